"""The documentation agrees with the code: the generated reference pages are current, and every link the README
and docs/ make to a file in the repository resolves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import load_script

ROOT = Path(__file__).resolve().parents[1]


def generator():
    return load_script("scripts/generate_docs.py")


@pytest.mark.parametrize("page", ["configuration.md", "tensorboard.md"])
def test_generated_page_matches_the_code(page):
    expected = generator().PAGES[page]()
    assert (ROOT / "docs" / page).read_text() == expected, f"docs/{page} is stale: run python scripts/generate_docs.py"


def test_every_config_key_and_tag_is_on_its_page():
    import dataclasses

    from meta_rl.config import Config
    from meta_rl.logger import TAGS

    configuration = (ROOT / "docs" / "configuration.md").read_text()

    def keys(cls, prefix=""):
        for field in dataclasses.fields(cls):
            if dataclasses.is_dataclass(field.default_factory if field.default_factory is not dataclasses.MISSING
                                        else None):
                yield from keys(field.default_factory, f"{prefix}{field.name}.")
            else:
                yield prefix + field.name

    for key in keys(Config):
        assert f"| `{key}` |" in configuration, key
    tensorboard = (ROOT / "docs" / "tensorboard.md").read_text()
    for tag in TAGS:
        assert f"| `{tag}` |" in tensorboard, tag


def markdown_files():
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors of a markdown page."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    headings = re.findall(r"^#+ (.+)$", text, re.M)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


@pytest.mark.parametrize("page", markdown_files(), ids=lambda path: path.name)
def test_relative_links_and_their_anchors_resolve(page):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        linked = page.parent / target if target else page
        assert linked.exists(), f"{page.name} links to {target}, which does not exist"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{page.name} links to {target}#{anchor}: no such heading"


def test_readme_is_a_landing_page():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 260, f"the README has {len(lines)} lines; details belong in docs/"


def test_every_results_file_is_named_by_the_docs():
    """results/ keeps only what a page shows: each file matches a path (brace lists and * allowed) that the README,
    docs/ or a research/ script names."""
    import fnmatch

    texts = "\n".join(path.read_text() for path in [*markdown_files(), *sorted((ROOT / "research").iterdir())])

    def expand(token):
        found = re.search(r"\{([^}]*)\}", token)
        if not found:
            return [token]
        return [out for alt in found.group(1).split(",")
                for out in expand(token[:found.start()] + alt + token[found.end():])]

    patterns = {name.replace("NAME", "*").rstrip(".,") for token in re.findall(r"results/([\w\-.{},*]+)", texts)
                for name in expand(token)} - {"*.json", "*.png"}
    unnamed = [path.name for path in sorted((ROOT / "results").iterdir())
               if not any(fnmatch.fnmatch(path.name, pattern) for pattern in patterns)]
    assert not unnamed, f"results/ files no page names: {unnamed}"
