"""The reference pages under docs/reference/ are generated from the models and up to date."""

from __future__ import annotations

from mspwatch import refdocs


def test_reference_pages_are_up_to_date() -> None:
    assert refdocs.main(["--check"]) == 0, "run: python -m mspwatch.refdocs"


def test_every_page_lists_every_model_field() -> None:
    for page in refdocs.PAGES:
        text = (refdocs.DOCS / f"{page.name}.md").read_text(encoding="utf-8")
        for path, *_ in refdocs.field_rows(refdocs._load(page.model)):
            assert f"| `{path}` |" in text, (page.name, path)


def test_every_field_is_described() -> None:
    missing = {page.name: refdocs.undocumented(page) for page in refdocs.PAGES}
    assert {name: fields for name, fields in missing.items() if fields} == {}
