"""Tests for tools/trace.py and its pytest plugins (tooling: no notice/rule markers)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tools import trace
from tools.trace import Clause, Marks, Rule


@pytest.fixture(scope="module")
def clauses() -> list[Clause]:
    return trace.parse_notice(
        (trace.shared_dir() / trace.NOTICE_FILE).read_text("utf-8")
    )


@pytest.fixture(scope="module")
def rules() -> list[Rule]:
    text = (trace.shared_dir() / trace.REQUIREMENTS_FILE).read_text("utf-8")
    return trace.parse_requirements(text)


def by_number(clauses: list[Clause]) -> dict[str, Clause]:
    return {c.number: c for c in clauses}


def test_notice_numbers_come_from_indentation(clauses: list[Clause]) -> None:
    found = by_number(clauses)
    assert found["3.2.1"].title.startswith("Identity Data")
    assert found["3.2.6"].title.startswith("Marketing and Communications Data")
    assert found["4.1.4"].title.startswith("to use data analytics")
    assert found["13.1.3"].title.startswith("request erasure")
    assert "13.1.7" in found and "13.1.8" not in found
    assert [c.number for c in clauses if c.depth == 1] == [str(n) for n in range(1, 14)]
    assert all(len(c.title) <= trace.TITLE_WIDTH for c in clauses)


def test_sections_without_subclauses_are_clauses(clauses: list[Clause]) -> None:
    leaves = {c.number for c in trace.traceable(clauses)}
    assert {"7", "9", "11"} <= leaves
    assert {"3", "3.2", "13", "13.1"}.isdisjoint(leaves)
    found = by_number(clauses)
    assert found["7"].title == "Third-party marketing"
    assert "express consent" in " ".join(found["7"].body)


def test_parse_notice_nested_numbering_and_tabs() -> None:
    text = "Title\n\n1. A\n\t1. A one\n\t\t1. deep\n\t\t2. deeper\n\t2. A two\n2. B\n  body of B\n"
    parsed = trace.parse_notice(text)
    assert [c.number for c in parsed] == ["1", "1.1", "1.1.1", "1.1.2", "1.2", "2"]
    assert [c.number for c in trace.traceable(parsed)] == ["1.1.1", "1.1.2", "1.2", "2"]
    assert parsed[-1].body == ["body of B"]


def test_parse_notice_rejects_numbers_that_do_not_follow_indentation() -> None:
    with pytest.raises(ValueError, match="expected 2"):
        trace.parse_notice("1. A\n  1. one\n  3. three\n")


def test_requirements_rule_ids_are_bullet_starts_only(rules: list[Rule]) -> None:
    ids = [r.id for r in rules]
    assert "R-MKT-4" in ids and "R-WITHDRAW-1" in ids
    assert len(ids) == len(set(ids))  # R-MKT-6 is also cited inside R-OBJ-1
    mkt4 = next(r for r in rules if r.id == "R-MKT-4")
    assert mkt4.title.startswith("Opt-out at any time")


def test_parse_requirements_rejects_duplicates() -> None:
    with pytest.raises(ValueError, match="duplicate rule R-A-1"):
        trace.parse_requirements("- R-A-1: one\n- R-A-1: again\n")


def test_unknown_ids_are_errors(clauses: list[Clause], rules: list[Rule]) -> None:
    tests = {
        "t.py::ok": Marks(
            notice=["8.1", "7"], rule=["R-MKT-4", "R-MKT-6"], problems=[]
        ),
        "t.py::typo": Marks(notice=["8.11"], rule=["R-NOPE-1", "R-MKT4"], problems=[]),
        "t.py::heading": Marks(notice=["13.1"], rule=[], problems=[]),
    }
    errors = trace.marker_errors(tests, clauses, rules)
    assert not [e for e in errors if e.startswith("t.py::ok")]
    assert any("unknown rule 'R-NOPE-1'" in e for e in errors)
    assert any("'R-MKT4'" in e and "did you mean R-MKT-4" in e for e in errors)
    assert any("unknown notice clause '8.11'" in e for e in errors)
    assert any("'13.1' has sub-clauses (13.1.1..13.1.7)" in e for e in errors)
    assert len(errors) == 4


def test_report_lists_tests_and_untraced_ids() -> None:
    clauses = trace.parse_notice("1. A\n  1. a one\n  2. a two\n2. B\n")
    rules = trace.parse_requirements("- R-X-1: first rule\n- R-X-2: second rule\n")
    tests = {"t.py::a": Marks(notice=["1.2"], rule=["R-X-2"], problems=[])}
    out = trace.report(tests, clauses, rules)
    assert "    1.2 a two\n        t.py::a\n" in out
    assert "  2 B\n      NONE\n" in out
    assert "  R-X-2 second rule\n      t.py::a\n" in out
    assert "Untraced: 2 clauses, 1 rules\n  clauses: 1.1, 2\n  rules: R-X-1" in out


def test_shorten_cuts_at_a_word() -> None:
    assert trace.shorten("short") == "short"
    assert trace.shorten("one two three four", width=12) == "one two…"


def test_missing_shared_folder_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KASEUM_SHARED_DIR", str(tmp_path))
    assert trace.shared_dir() == tmp_path
    assert trace.main([]) == 2


SAMPLE = """
import pytest

pytestmark = pytest.mark.rule("R-MKT-6")

@pytest.mark.notice("8.1")
@pytest.mark.rule("R-MKT-4", "R-MKT-6")
def test_opt_out():
    raise AssertionError("collected, never run")

@pytest.mark.notice("7")
class TestThirdParty:
    @pytest.mark.notice("7", "6.1")
    def test_consent(self):
        pass

def test_plain():
    pass
"""


def test_plugin_collects_markers_without_running(tmp_path: Path) -> None:
    (tmp_path / "test_sample.py").write_text(textwrap.dedent(SAMPLE))
    result = trace.collect(tmp_path, ["-p", "tools.pytest_markers", "--strict-markers"])
    assert result.returncode == 0, result.output
    assert result.tests == {
        "test_sample.py::test_opt_out": Marks(["8.1"], ["R-MKT-4", "R-MKT-6"], []),
        "test_sample.py::TestThirdParty::test_consent": Marks(
            ["7", "6.1"], ["R-MKT-6"], []
        ),
        "test_sample.py::test_plain": Marks([], ["R-MKT-6"], []),
    }


def test_malformed_markers_are_a_usage_error(tmp_path: Path) -> None:
    bad = "import pytest\n\n@pytest.mark.notice(8.1)\n@pytest.mark.rule\ndef test_x():\n    pass\n"
    (tmp_path / "test_bad.py").write_text(bad)
    result = trace.collect(tmp_path, ["-p", "tools.pytest_markers"])
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "invalid traceability markers" in result.output
    assert result.tests is not None  # written before the usage error
    problems = result.tests["test_bad.py::test_x"].problems
    assert any("8.1 is not a string" in p for p in problems)
    assert any("@pytest.mark.rule has no id" in p for p in problems)
