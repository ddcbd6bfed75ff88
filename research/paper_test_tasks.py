#!/usr/bin/env python
"""Write the MAML paper's test tasks as task files for ``meta-rl evaluate --task-file``.

The paper's RL numbers are means over 40 test tasks that the authors' test scripts (``maml_examples/
test_maml_cheetah.py``, ``test_maml_cheetah_direc.py`` and ``test_maml_point.py`` in cbfinn/maml_rl) draw with
numpy's legacy generator seeded 1. A mean over 40 tasks moves with the tasks drawn (a velocity run's return
falls with the target speed), so scoring on the same 40 tasks takes that variation out of a comparison with the
paper. This redraws them exactly:

- velocity: 40 target speeds ``uniform(0, 2)``;
- direction: the same draw, backward (-1) where it is below 1 and forward (+1) otherwise, as the authors'
  direction env reads its goal (18 forward, 22 backward);
- 2D navigation: 40 goals ``uniform(-0.5, 0.5)`` in each coordinate (the script as published then keeps one of
  them, a debugging leftover; all 40 are written).

    python research/paper_test_tasks.py   # writes meta_rl/task_sets/{cheetah-vel,cheetah-dir,navigation}.json
    meta-rl evaluate runs/cheetah-vel-maml-paper --task-file paper:cheetah-vel
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

NUM_TASKS, SEED = 40, 1
SOURCE = "cbfinn/maml_rl, maml_examples/{}: np.random.seed(1); np.random.uniform({}, size={})"


def paper_test_tasks() -> dict[str, dict]:
    """Each family's file contents: the tasks, and where they come from."""
    speeds = np.random.RandomState(SEED).uniform(0.0, 2.0, size=(NUM_TASKS,))
    goals = np.random.RandomState(SEED).uniform(-0.5, 0.5, size=(NUM_TASKS, 2))
    directions = np.where(speeds < 1.0, -1.0, 1.0)
    return {
        "cheetah-vel": {
            "source": SOURCE.format("test_maml_cheetah.py", "0.0, 2.0", "(40,)"),
            "tasks": speeds.tolist(),
        },
        "cheetah-dir": {
            "source": SOURCE.format("test_maml_cheetah_direc.py", "0.0, 2.0", "(40,)")
            + "; direction -1 where the draw is below 1.0, else +1 (rllab's half_cheetah_env_rand_direc.py)",
            "tasks": directions.tolist(),
        },
        "navigation": {
            "source": SOURCE.format("test_maml_point.py", "-0.5, 0.5", "(40, 2)"),
            "tasks": goals.tolist(),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "meta_rl" / "task_sets"),
                        help="directory to write FAMILY.json into (default meta_rl/task_sets, the package's)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for family, contents in paper_test_tasks().items():
        path = out / f"{family}.json"
        path.write_text(json.dumps(contents, indent=1) + "\n")
        print(f"Wrote {path} ({len(contents['tasks'])} tasks)")


if __name__ == "__main__":
    main()
