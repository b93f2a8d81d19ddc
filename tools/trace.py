"""Traceability: which tests check which privacy-notice clause and requirement rule.

    .venv/bin/python tools/trace.py                 # whole repo
    .venv/bin/python tools/trace.py -- services/x   # only some paths (pytest args)

Tests are marked ``@pytest.mark.notice("8.1")`` and ``@pytest.mark.rule("R-MKT-4")``.
The tests are collected, not run (``tools/trace_plugin.py``). The shared
documents are read from ``$KASEUM_SHARED_DIR``, default ``../shared`` beside the repo.

Exit 0: report printed. Exit 1: a marker names an unknown clause or rule, or is
malformed. Exit 2: the documents could not be read or pytest could not collect
cleanly (the report, if printed, may be incomplete).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTICE_FILE = "privacy-notice.txt"
REQUIREMENTS_FILE = "REQUIREMENTS.md"
TITLE_WIDTH = 60

_NUMBERED = re.compile(r"(?P<indent> *)(?P<n>\d+)\.\s+(?P<text>\S.*)")
_RULE = re.compile(r"\s*[-*+]\s+(?P<id>R-[A-Z][A-Z0-9]*-\d+)\b:?\s*(?P<text>.*)")


@dataclass
class Clause:
    number: str  # "3.2.1"
    heading: str  # the text on the numbered line
    indent: int
    body: list[str] = field(default_factory=list)  # unnumbered lines below it
    subclauses: list[str] = field(default_factory=list)

    @property
    def depth(self) -> int:
        return self.number.count(".") + 1

    @property
    def title(self) -> str:
        return shorten(self.heading)


@dataclass(frozen=True)
class Rule:
    id: str
    text: str

    @property
    def title(self) -> str:
        return shorten(self.text)


@dataclass(frozen=True)
class Marks:
    notice: list[str]
    rule: list[str]
    problems: list[str]


@dataclass(frozen=True)
class Collection:
    tests: dict[str, Marks] | None  # None: the plugin wrote nothing
    returncode: int
    output: str


def shorten(text: str, width: int = TITLE_WIDTH) -> str:
    """Collapse whitespace and cut at a word boundary, ending with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    cut = text[: width - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:.") + "…"


def parse_notice(text: str) -> list[Clause]:
    """Every numbered item of the notice, in document order, numbered by indentation.

    Clauses that can be traced are those without sub-clauses (``traceable``).
    Raises ValueError if the written numbers do not follow the indentation.
    """
    clauses: list[Clause] = []
    stack: list[tuple[int, int, Clause]] = []  # (indent, local number, clause)
    for lineno, raw in enumerate(text.expandtabs(4).splitlines(), start=1):
        if not raw.strip():
            continue
        match = _NUMBERED.fullmatch(raw.rstrip())
        indent = len(raw) - len(raw.lstrip())
        if match is None:  # continuation text, e.g. the body of section 7
            owner = next((c for i, _, c in reversed(stack) if i < indent), None)
            if owner is not None:
                owner.body.append(raw.strip())
            continue
        while stack and stack[-1][0] > indent:
            stack.pop()
        expected = stack.pop()[1] + 1 if stack and stack[-1][0] == indent else 1
        n = int(match["n"])
        if n != expected:
            raise ValueError(
                f"notice line {lineno}: numbered {n}, expected {expected}: {raw!r}"
            )
        parent = stack[-1][2] if stack else None
        number = f"{parent.number}.{n}" if parent else str(n)
        clause = Clause(number=number, heading=match["text"].strip(), indent=indent)
        if parent:
            parent.subclauses.append(number)
        clauses.append(clause)
        stack.append((indent, n, clause))
    return clauses


def traceable(clauses: Iterable[Clause]) -> list[Clause]:
    return [c for c in clauses if not c.subclauses]


def parse_requirements(text: str) -> list[Rule]:
    """Rules are bullet lines starting with an ``R-XXX-N`` id (ids elsewhere are references)."""
    rules: list[Rule] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        match = _RULE.match(line)
        if match is None:
            continue
        if any(r.id == match["id"] for r in rules):
            raise ValueError(
                f"requirements line {lineno}: duplicate rule {match['id']}"
            )
        rules.append(Rule(id=match["id"], text=match["text"].strip()))
    return rules


def shared_dir() -> Path:
    env = os.environ.get("KASEUM_SHARED_DIR")
    return Path(env) if env else (REPO_ROOT / ".." / "shared").resolve()


def collect(root: Path, pytest_args: Sequence[str] = ()) -> Collection:
    """Collect (never run) the tests under ``root`` and read their notice/rule marker ids."""
    with tempfile.TemporaryDirectory(prefix="kaseum-trace-") as tmp:
        out = Path(tmp) / "trace.json"
        cmd = [
            sys.executable, "-m", "pytest", "--collect-only", "-q",
            "-p", "tools.trace_plugin", f"--trace-json={out}",
            "-p", "no:cacheprovider", f"--rootdir={root}", *pytest_args,
        ]  # fmt: skip
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        proc = subprocess.run(
            cmd, cwd=root, env=env, capture_output=True, text=True, check=False
        )
        tests = None
        if out.exists():
            raw = json.loads(out.read_text(encoding="utf-8"))
            tests = {nodeid: Marks(**marks) for nodeid, marks in raw.items()}
    return Collection(tests, proc.returncode, proc.stdout + proc.stderr)


def marker_errors(
    tests: Mapping[str, Marks], clauses: Sequence[Clause], rules: Sequence[Rule]
) -> list[str]:
    """Malformed markers and ids that name no clause/rule (a clause with sub-clauses is
    not a clause: mark the sub-clauses it means)."""
    by_number = {c.number: c for c in clauses}
    clause_ids = [c.number for c in traceable(clauses)]
    rule_ids = [r.id for r in rules]
    errors: list[str] = []
    for nodeid, marks in tests.items():
        errors.extend(f"{nodeid}: {problem}" for problem in marks.problems)
        for number in marks.notice:
            clause = by_number.get(number)
            if clause is None:
                hint = _hint(number, clause_ids)
                errors.append(f"{nodeid}: unknown notice clause {number!r}{hint}")
            elif clause.subclauses:
                subs = f"{clause.subclauses[0]}..{clause.subclauses[-1]}"
                errors.append(
                    f"{nodeid}: notice {number!r} has sub-clauses ({subs}); mark those"
                )
        for rule_id in marks.rule:
            if rule_id not in rule_ids:
                errors.append(
                    f"{nodeid}: unknown rule {rule_id!r}{_hint(rule_id, rule_ids)}"
                )
    return errors


def _hint(wrong: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(wrong, known, n=3, cutoff=0.8)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def _index(tests: Mapping[str, Marks], kind: str) -> dict[str, list[str]]:
    """id -> nodeids of the tests whose ``kind`` ("notice" or "rule") markers name it."""
    index: dict[str, list[str]] = {}
    for nodeid, marks in tests.items():
        for id_ in marks.notice if kind == "notice" else marks.rule:
            index.setdefault(id_, []).append(nodeid)
    return index


def report(
    tests: Mapping[str, Marks], clauses: Sequence[Clause], rules: Sequence[Rule]
) -> str:
    by_clause, by_rule = _index(tests, "notice"), _index(tests, "rule")
    lines = ["Notice clauses"]
    for clause in clauses:
        pad = "  " * clause.depth
        lines.append(f"{pad}{clause.number} {clause.title}")
        if not clause.subclauses:  # a heading's tests are listed under its sub-clauses
            lines += [f"{pad}    {n}" for n in by_clause.get(clause.number, ["NONE"])]
    lines += ["", "Requirements rules"]
    for rule in rules:
        lines.append(f"  {rule.id} {rule.title}")
        lines += [f"      {n}" for n in by_rule.get(rule.id, ["NONE"])]
    untraced_clauses = [
        c.number for c in traceable(clauses) if c.number not in by_clause
    ]
    untraced_rules = [r.id for r in rules if r.id not in by_rule]
    marked = sum(1 for m in tests.values() if m.notice or m.rule)
    lines += [
        "",
        f"Tests: {len(tests)} collected, {marked} with notice/rule markers",
        f"Untraced: {len(untraced_clauses)} clauses, {len(untraced_rules)} rules",
        *_wrapped("clauses", untraced_clauses),
        *_wrapped("rules", untraced_rules),
    ]
    return "\n".join(lines)


def _wrapped(label: str, ids: Sequence[str]) -> list[str]:
    text = f"{label}: {', '.join(ids) or 'none'}"
    return textwrap.wrap(text, 88, initial_indent="  ", subsequent_indent="    ")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0] if __doc__ else None
    )
    parser.add_argument(
        "pytest_args", nargs="*", help="passed to pytest after '--' (paths, -k)"
    )
    args = parser.parse_args(argv)
    shared = shared_dir()
    try:
        clauses = parse_notice((shared / NOTICE_FILE).read_text(encoding="utf-8"))
        rules = parse_requirements(
            (shared / REQUIREMENTS_FILE).read_text(encoding="utf-8")
        )
    except (OSError, ValueError) as exc:
        print(
            f"error: {exc} (shared folder: {shared}; set KASEUM_SHARED_DIR)",
            file=sys.stderr,
        )
        return 2
    result = collect(REPO_ROOT, args.pytest_args)
    if result.tests is None:
        print(result.output, file=sys.stderr)
        print(
            f"error: pytest collected nothing (exit {result.returncode})",
            file=sys.stderr,
        )
        return 2
    print(report(result.tests, clauses, rules))
    errors = marker_errors(result.tests, clauses, rules)
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    collected_ok = result.returncode in (0, 5)  # 5: no tests collected
    if not collected_ok:
        print(result.output, file=sys.stderr)
        print(f"error: pytest collection failed (exit {result.returncode}); "
              "the report may be incomplete", file=sys.stderr)  # fmt: skip
    if errors:
        print(f"{len(errors)} marker error(s)", file=sys.stderr)
        return 1
    return 0 if collected_ok else 2


if __name__ == "__main__":
    sys.exit(main())
