"""The audit trail: hash-chained, append-only in the database, queryable, and its check says where it breaks."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from servicekit import append_only, audit, chain
from servicekit.testing import person
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from .conftest import AuditLog, ChainHead, Db

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
AGENT, RESELLER, OTHER = "a" * 32, "r" * 32, "o" * 32
ALICE, BOB, CAROL = "1" * 32, "2" * 32, "3" * 32


def read(db: Db, actor: str, role: str, subject: str, at: datetime, org: str = "") -> None:
    with db.sessions() as session:
        audit.record(session, AuditLog, ChainHead, person(actor, role),
                     [audit.Access(subject, "ticket.read", "t-" + subject[:4])], organisation_id=org, at=at)
        session.commit()


def check(db: Db) -> chain.ChainCheck:
    with db.sessions() as session:
        return chain.verify(session, AuditLog, ChainHead)


@pytest.mark.notice("11")
@pytest.mark.rule("R-SEC-1")
def test_each_access_is_one_linked_row_and_the_chain_checks_out(db: Db) -> None:
    for i, subject in enumerate((ALICE, BOB, ALICE)):
        read(db, AGENT, "agent", subject, T0 + timedelta(minutes=i))
    with db.sessions() as session:
        rows = audit.query(session, AuditLog, audit.AuditFilter(subject_id=ALICE))
    assert [(r.seq, r.actor_id, r.actor_role, r.action, r.purpose) for r in rows] == [
        (1, AGENT, "agent", "ticket.read", "4.1.3"), (3, AGENT, "agent", "ticket.read", "4.1.3")]
    assert check(db) == chain.ChainCheck("audit", True, 3)


@pytest.mark.notice("11")
@pytest.mark.rule("R-SEC-1")
@pytest.mark.parametrize("statement", ["UPDATE audit_log SET subject_id = 'x'", "DELETE FROM audit_log"])
def test_the_database_refuses_to_change_or_remove_audit_rows(db: Db, statement: str) -> None:
    read(db, AGENT, "agent", ALICE, T0)
    with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
        conn.execute(text(statement))
    assert check(db).intact


@pytest.mark.notice("11")
@pytest.mark.rule("R-SEC-1")
def test_an_edited_row_breaks_the_chain_and_the_check_says_where(db: Db) -> None:
    for i, subject in enumerate((ALICE, BOB, CAROL, ALICE)):
        read(db, AGENT, "agent", subject, T0 + timedelta(minutes=i))
    # Someone with DDL rights drops the triggers and rewrites history: who read Carol's data.
    with db.engine.begin() as conn:
        append_only.uninstall(conn, "audit_log")
        conn.execute(text("UPDATE audit_log SET actor_id = :other WHERE seq = 3"), {"other": OTHER})
    broken = check(db)
    assert (broken.intact, broken.broken_at_seq, broken.checked) == (False, 3, 2)
    assert "does not match its hash" in broken.problem


def test_a_recomputed_hash_is_caught_at_the_next_row(db: Db) -> None:
    for i, subject in enumerate((ALICE, BOB, CAROL)):
        read(db, AGENT, "agent", subject, T0 + timedelta(minutes=i))
    with db.sessions() as session:
        row = session.get(AuditLog, 2)
        assert row is not None
        row.actor_id = OTHER
        forged = chain.digest(row)
    with db.engine.begin() as conn:
        append_only.uninstall(conn, "audit_log")
        conn.execute(text("UPDATE audit_log SET actor_id = :o, hash = :h WHERE seq = 2"), {"o": OTHER, "h": forged})
    broken = check(db)
    assert (broken.intact, broken.broken_at_seq) == (False, 3)
    assert "does not link" in broken.problem


def test_a_removed_row_leaves_a_gap_the_check_reports(db: Db) -> None:
    for i, subject in enumerate((ALICE, BOB, CAROL)):
        read(db, AGENT, "agent", subject, T0 + timedelta(minutes=i))
    with db.engine.begin() as conn:
        append_only.uninstall(conn, "audit_log")
        conn.execute(text("DELETE FROM audit_log WHERE seq = 2"))
    assert (check(db).broken_at_seq, check(db).intact) == (2, False)
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = 3"))
    tail = check(db)
    assert (tail.intact, tail.broken_at_seq) == (False, 2)


@pytest.mark.notice("11")
@pytest.mark.rule("R-SEC-3")
def test_the_breach_query_finds_exactly_the_subjects_accessed_in_the_window(db: Db) -> None:
    read(db, AGENT, "agent", CAROL, T0 - timedelta(hours=1))        # before the window
    read(db, AGENT, "agent", ALICE, T0)                              # at its start: in
    read(db, AGENT, "agent", ALICE, T0 + timedelta(minutes=5))
    read(db, OTHER, "agent", BOB, T0 + timedelta(minutes=10))        # someone else
    read(db, RESELLER, "reseller", BOB, T0 + timedelta(minutes=20), org="org-res")
    read(db, AGENT, "agent", BOB, T0 + timedelta(hours=1))           # at its end: out
    read(db, AGENT, "agent", "", T0 + timedelta(minutes=30))         # about no one subject: not listed
    window = {"from_time": T0, "to_time": T0 + timedelta(hours=1)}
    with db.sessions() as session:
        by_agent = audit.accessed_subjects(session, AuditLog, audit.AuditFilter(actor_id=AGENT, **window))
        by_org = audit.accessed_subjects(session, AuditLog, audit.AuditFilter(actor_organisation_id="org-res",
                                                                              **window))
    assert [(a.subject_id, a.accesses) for a in by_agent] == [(ALICE, 2)]
    assert [a.subject_id for a in by_org] == [BOB]


@pytest.mark.rule("R-SEC-1")
def test_concurrent_writers_never_fork_the_chain(db: Db) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(15):
                read(db, AGENT, "agent", f"{n:02d}{i:030d}", T0 + timedelta(seconds=i))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    result = check(db)
    assert result == chain.ChainCheck("audit", True, 90), result


def test_the_subjects_export_says_who_accessed_their_data_but_not_the_staff_members_id(db: Db) -> None:
    read(db, RESELLER, "reseller", ALICE, T0, org="org-res")
    with db.sessions() as session:
        name, category, columns, rows = audit.export_table(session, AuditLog, ALICE)
    assert (name, category) == ("access_log", "access_records")
    assert len(rows) == 1 and rows[0][0].startswith("2026-03-01")
    assert rows[0][1:] == ["person", "reseller", "org-res", "ticket.read", "t-1111", "4.1.3"]
    assert RESELLER not in str(rows) and "actor_id" not in columns
