"""Registers the traceability markers and checks they are used with arguments.

Loaded from the root conftest (``pytest_plugins = ["tools.pytest_markers"]``):

    @pytest.mark.notice("8.1")            # clause of shared/privacy-notice.txt
    @pytest.mark.rule("R-MKT-4", "R-MKT-6")  # rules of shared/REQUIREMENTS.md

Whether the ids exist is checked by ``tools/trace.py``; here we only make
sure every marker names at least one id and that every id is a string.
"""

from __future__ import annotations

import pytest

TRACE_MARKERS = ("notice", "rule")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "notice(clause, ...): the test checks these clauses of the privacy notice, "
        'e.g. notice("8.1") or notice("13.1.3", "13.2")',
    )
    config.addinivalue_line(
        "markers",
        "rule(rule_id, ...): the test checks these rules of REQUIREMENTS.md, "
        'e.g. rule("R-MKT-4") or rule("R-MKT-4", "R-MKT-6")',
    )


def marker_problems(mark: pytest.Mark) -> list[str]:
    """What is wrong with one notice/rule marker (empty if it is fine)."""
    usage = f'@pytest.mark.{mark.name}("id", ...)'
    problems: list[str] = []
    if not mark.args:
        problems.append(f"@pytest.mark.{mark.name} has no id; use {usage}")
    for arg in mark.args:
        if not isinstance(arg, str):
            problems.append(
                f"@pytest.mark.{mark.name} id {arg!r} is not a string; use {usage}"
            )
        elif not arg.strip():
            problems.append(f"@pytest.mark.{mark.name} has an empty id")
    if mark.kwargs:
        names = ", ".join(sorted(mark.kwargs))
        problems.append(
            f"@pytest.mark.{mark.name} takes no keyword arguments (got {names})"
        )
    return problems


def item_problems(item: pytest.Item) -> list[str]:
    """Problems with all notice/rule markers on an item (incl. class and module marks)."""
    return [
        problem
        for name in TRACE_MARKERS
        for mark in item.iter_markers(name=name)
        for problem in marker_problems(mark)
    ]


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    errors = [
        f"{item.nodeid}: {problem}" for item in items for problem in item_problems(item)
    ]
    if errors:
        raise pytest.UsageError(
            "invalid traceability markers:\n  " + "\n  ".join(errors)
        )
