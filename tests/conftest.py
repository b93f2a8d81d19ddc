"""Fixtures for cross-service tests: real processes, real NATS JetStream, real databases."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

# Imported here, at collection, and not first by its pytest plugin's summary at the end of a session
# that ran only e2e tests: pytest's assertion rewriting then parses it (ast.parse) while the stacks'
# threads wind down, which CPython 3.11.7 can fail with "AST constructor recursion depth mismatch"
# (gh-106905), crashing the run after every test passed.
import hypothesis  # noqa: F401
import pytest

from tests.support.databases import backend, fresh_database_urls
from tools.stack import Stack


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.environ.get("CI") == "true" and backend() != "postgresql":
        # A CI run must test on PostgreSQL: fail loudly rather than quietly fall back.
        raise pytest.UsageError("CI=true but KASEUM_TEST_POSTGRES is not set: .ci/run must start PostgreSQL")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if backend() == "postgresql":
        terminalreporter.write_line("databases: PostgreSQL (KASEUM_TEST_POSTGRES)")
    else:
        terminalreporter.write_line("databases: SQLite — PostgreSQL not configured (set KASEUM_TEST_POSTGRES, "
                                    "as .ci/run does, to test against it)")


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[object]:
    """Factory for a whole system on free ports, stopped at the end of the test."""
    stacks: list[Stack] = []

    def build(**env: str) -> Stack:
        var = tmp_path / f"stack{len(stacks)}"
        stack = Stack.on_free_ports(var, extra_env={**fresh_database_urls(), **env})
        stacks.append(stack)
        return stack

    yield build
    for stack in stacks:
        stack.stop()


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One running system shared by the tests of a module (they use fresh accounts)."""
    stack = Stack.on_free_ports(tmp_path_factory.mktemp("system"), extra_env=fresh_database_urls())
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
