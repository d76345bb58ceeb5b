"""The README and the docs index stay true to the code: every command, every settings
variable and every docs page is where a reader looks for it, and the README names no
variable nothing reads."""

from __future__ import annotations

import re

from core.settings import Settings
from marketflow.cli import COMMANDS
from tests.support.paths import REPO

README = (REPO / "README.md").read_text()
DOCS = REPO / "docs"
CONFIGURATION = (DOCS / "configuration.md").read_text()


def section(text: str, heading: str) -> str:
    """The text under a `## heading` up to the next heading of that level."""
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def first_column(table_text: str) -> list[str]:
    """First cells of the Markdown table rows (header and rule rows left out)."""
    cells = [line.split("|")[1].strip() for line in table_text.splitlines() if line.startswith("|")]
    return [c for c in cells[2:] if c and not set(c) <= set("-: ")]


def settings_variables() -> set[str]:
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if alias is None:
            names.add(name.upper())
        elif isinstance(alias, str):
            names.add(alias)
        else:
            names.update(str(choice) for choice in alias.choices)
    return names


def test_every_command_is_in_the_readme_command_table() -> None:
    documented = {
        cell.strip("`").split()[0] for cell in first_column(section(README, "Command line"))
    }
    assert set(COMMANDS) <= documented, sorted(set(COMMANDS) - documented)


def test_every_settings_variable_is_in_the_configuration_reference() -> None:
    missing = sorted(v for v in settings_variables() if f"`{v}`" not in CONFIGURATION)
    assert not missing, f"add to docs/configuration.md: {missing}"


def test_the_readme_names_only_variables_something_reads() -> None:
    read = settings_variables()
    outside = section(CONFIGURATION, "Read outside the settings")
    readme_config = section(README, "Configuration")
    # the table's first column, and any variable-shaped name (with an underscore) in its prose
    named = {n for cell in first_column(readme_config) for n in re.findall(r"`([A-Z0-9_]+)`", cell)}
    named |= set(re.findall(r"`([A-Z][A-Z0-9]*_[A-Z0-9_]+)`", readme_config))
    for variable in sorted(named - read):
        row = next((r for r in outside.splitlines() if f"`{variable}`" in r), None)
        assert row is not None, f"README names {variable}, which nothing reads"
        reader = re.search(r"\| `([^`]+\.py)` \|", row)
        if reader:  # a file of ours: it must really read the variable
            assert variable in (REPO / reader.group(1)).read_text(), (variable, reader.group(1))


def test_every_docs_page_is_in_the_index_once() -> None:
    index = (DOCS / "README.md").read_text()
    linked = re.findall(r"^\| \[[^\]]+\]\(([^)]+\.md)\)", index, flags=re.M)
    pages = sorted(p.name for p in DOCS.glob("*.md") if p.name != "README.md")
    assert sorted(linked) == pages, (sorted(set(pages) - set(linked)), linked)


def test_links_between_pages_resolve() -> None:
    for page in [REPO / "README.md", *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links {target}"
