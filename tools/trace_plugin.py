"""pytest plugin: dump each collected test's notice/rule marker ids as JSON.

    python -m pytest --collect-only -q -p tools.trace_plugin --trace-json=out.json

The file maps every collected nodeid to
``{"notice": [...], "rule": [...], "problems": [...]}`` (ids in marker order,
without duplicates; ``problems`` are malformed markers, e.g. no id or a
non-string id). With ``--trace-json`` the run only collects, never runs tests.
``tools/trace.py`` reads the file and checks the ids against the shared documents.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from pathlib import Path

import pytest

from tools.pytest_markers import TRACE_MARKERS, item_problems


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("traceability").addoption(
        "--trace-json",
        metavar="PATH",
        default=None,
        help="write each test's notice/rule marker ids to PATH as JSON (implies --collect-only)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("trace_json"):
        config.option.collectonly = True


def item_ids(item: pytest.Item) -> dict[str, list[str]]:
    """The string ids of an item's notice/rule markers, plus marker problems."""
    entry: dict[str, list[str]] = {}
    for name in TRACE_MARKERS:
        ids: list[str] = []
        for mark in item.iter_markers(name=name):
            for arg in mark.args:
                if isinstance(arg, str) and arg not in ids:
                    ids.append(arg)
        entry[name] = ids
    entry["problems"] = item_problems(item)
    return entry


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> Generator[None, None, None]:
    # Wrap the other hooks: see the final list, and still write the file if
    # one of them (e.g. tools.pytest_markers) raises a usage error.
    try:
        return (yield)
    finally:
        path = config.getoption("trace_json")
        if path:
            data = {item.nodeid: item_ids(item) for item in items}
            Path(path).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
