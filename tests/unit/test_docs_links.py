"""The README is the tour and docs/ the reference: every relative link between them names a file that exists and,
with a #fragment, a heading of that file (GitHub's anchor rule), so moving a section cannot strand a link."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for the headings of `page`: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def test_the_readme_links_every_doc() -> None:
    linked = {target for target in LINK.findall(PAGES[0].read_text())}
    assert {f"docs/{page.name}" for page in PAGES[1:]} <= linked


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_each_relative_link_resolves(page: Path) -> None:
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, fragment = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.is_file(), f"{page.name}: {target} names no file"
        assert not fragment or fragment in anchors(linked), f"{page.name}: {target} names no heading"


def test_the_architecture_page_names_every_module_in_its_subpackage() -> None:
    """docs/architecture.md lists orchestrator/ by subpackage: a module added, moved or removed shows here."""
    text = (REPO / "docs" / "architecture.md").read_text()
    sections = {m.group(1): m.group(0) for m in re.finditer(r"^- `(\w+)/`.*?(?=^- |^\S|\Z)", text, re.M | re.S)}
    top = re.search(r"^- Top level.*?(?=^- )", text, re.M | re.S)
    assert top is not None
    sections[""] = top.group(0)
    modules = sorted((REPO / "orchestrator").rglob("*.py"))
    packages = {m.parent.name for m in modules if m.parent.name != "orchestrator"}
    assert set(sections) == packages | {""}
    for module in modules:
        if module.name == "__init__.py" and module.parent.name != "orchestrator":
            continue  # a subpackage's own docstring; its bullet says the same
        package = "" if module.parent.name == "orchestrator" else module.parent.name
        assert f"`{module.name}`" in sections[package], f"docs/architecture.md: {package}/ does not name {module.name}"
