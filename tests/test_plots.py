"""Training curves: block means and moving averages of a checkpoint's history, and the picture."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from meta_rl import plots
from meta_rl.cli import main
from meta_rl.plots import _moving_average, block_means, plot_adaptation_curves, plot_training_curves, return_keys


def history(values_before: list[float], values_after: list[float]) -> list[dict[str, float]]:
    # keys in the order a dict may hold them: the plot and tables must sort by step, not by insertion
    return [{"returns/step_1": a, "returns/step_0": b} for b, a in zip(values_before, values_after, strict=True)]


def test_block_means_cover_every_iteration_and_the_last_block_may_be_short():
    rows = block_means(history([0, 1, 2, 3, 4], [10, 20, 30, 40, 50]), block=2)
    assert [(first, last) for first, last, _ in rows] == [(1, 2), (3, 4), (5, 5)]
    assert [means["returns/step_0"] for _, _, means in rows] == [0.5, 2.5, 4.0]
    assert [means["returns/step_1"] for _, _, means in rows] == [15.0, 35.0, 50.0]
    assert list(rows[0][2]) == ["returns/step_0", "returns/step_1"]  # before adapting first


def test_return_keys_sort_by_step_number_not_text():
    keys = return_keys([{f"returns/step_{k}": 0.0 for k in (10, 2, 0, 1)}])
    assert keys == ["returns/step_0", "returns/step_1", "returns/step_2", "returns/step_10"]


@pytest.mark.parametrize("bad", [0, -3])
def test_bad_block_or_window_and_empty_history_are_clear_errors(bad, tmp_path):
    with pytest.raises(ValueError, match=f"block must be a positive number of iterations, got {bad}"):
        block_means(history([0], [1]), bad)
    with pytest.raises(ValueError, match=f"window must be a positive number of iterations, got {bad}"):
        plot_training_curves([history([0], [1])], ["run"], tmp_path / "x.png", window=bad)
    with pytest.raises(ValueError, match="history is empty"):
        block_means([], 5)


def test_moving_average_is_the_mean_of_the_last_window_values():
    values = np.array([1.0, 3.0, 5.0, 7.0, 100.0])
    expected = [1.0, 2.0, 3.0, 5.0, (5.0 + 7.0 + 100.0) / 3]
    np.testing.assert_allclose(_moving_average(values, 3), expected)
    np.testing.assert_allclose(_moving_average(values, 1), values)


def test_training_curves_png_is_written(tmp_path):
    path = plot_training_curves([history([0, 1, 2], [5, 6, 7]), history([1, 1, 1], [2, 3, 4])], ["a", "b"],
                                tmp_path / "sub" / "curves.png", window=2, title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


RESULT = {"env": "meta_rl/HalfCheetahVel-v0", "label": "maml",
          "returns": {"mean": [-150.0, -90.0, -80.0, -75.0], "stderr": [9.0, 7.0, 6.0, 6.0]}}


def test_adaptation_plot_draws_published_references_beside_the_results(tmp_path, monkeypatch):
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or Path(path))
    paper = [-129.5, -78.6, -66.6, -60.8]
    plot_adaptation_curves([RESULT], tmp_path / "a.png", references=[("paper", paper), ("paper oracle", [-54.5])])
    ax = figures[0].axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_array_equal(lines["paper"].get_ydata(), paper)
    assert lines["paper"].get_linestyle() == "--"
    np.testing.assert_array_equal(lines["paper oracle (-54.5)"].get_ydata(), [-54.5, -54.5])
    assert set(ax.get_legend_handles_labels()[1]) == {"maml", "paper", "paper oracle (-54.5)"}


def test_cli_plot_reference_option(tmp_path, capsys):
    result = tmp_path / "maml.json"
    result.write_text(json.dumps(RESULT))
    picture = tmp_path / "curve.png"
    assert main(["plot", str(result), "-o", str(picture), "--reference", "MAML paper=-129.5,-78.6,-66.6,-60.8",
                 "--reference", "oracle=-54.5"]) == 0
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["plot", str(result), "-o", str(picture), "--reference=-129.5,-78.6"]) == 2
    assert "must look like LABEL=r0,r1,..." in capsys.readouterr().err
    assert main(["plot", str(result), "-o", str(picture), "--reference", "paper=-129.5,abc"]) == 2
    assert "--reference 'paper' '-129.5,abc' is not a comma-separated list of numbers" in capsys.readouterr().err
