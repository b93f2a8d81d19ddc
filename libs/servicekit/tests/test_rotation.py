"""Retention of the audit trail and transfer log: a prefix of each chain purged after 6 years, anchored, so the
chain check still catches any edit, removal or gap in what remains, and the database still refuses other deletes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from servicekit import append_only, audit, chain, holds, rotation
from servicekit.retention import Purger, RetentionRule
from servicekit.testing import Clock, person
from servicekit.transfers import TransferGate, TransferPolicy
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from .conftest import MODELS, AuditLog, ChainHead, Db, LegalHold, PurgeRun, TransferLog

# The triggers compare with the database's own clock, so the injected clock starts at today's date.
NOW = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
SIX_YEARS_AGO = NOW.replace(year=NOW.year - 6)
AGENT, ALICE, BOB = "a" * 32, "1" * 32, "2" * 32
RULE = RetentionRule("access_and_transfer_records", "access_records", "access and transfer records",
                     "the access or decision", "test", months=rotation.MONTHS, purge=rotation.purge_chains(MODELS))
# Ages relative to the 6-year cut-off: negative is older (due), positive is younger (kept).
AGES = [timedelta(days=-400), timedelta(days=-10), timedelta(days=-1), timedelta(hours=-1), timedelta(hours=1),
        timedelta(days=30), timedelta(days=6 * 365)]
DUE = 4


def fill(db: Db) -> None:
    """One audit row and one transfer decision at each age; the third (due) ones are about Bob."""
    clock = Clock(NOW)
    gate = TransferGate(TransferPolicy(), db.sessions, TransferLog, ChainHead, clock)
    for i, age in enumerate(AGES):
        subject = BOB if i == 2 else ALICE
        with db.sessions() as session:
            audit.record(session, AuditLog, ChainHead, person(AGENT, "agent"),
                         [audit.Access(subject, "ticket.read", "t-1")], at=SIX_YEARS_AGO + age)
            session.commit()
        clock.now = SIX_YEARS_AGO + age
        gate.check("reseller_access", "IE", "org-ie", ["3.2.1"], subject_id=subject, actor_id=AGENT)


def seqs(db: Db, model: type[chain.ChainedMixin]) -> list[int]:
    with db.sessions() as session:
        return list(session.scalars(select(model.seq).order_by(model.seq)))


def verify(db: Db, model: type[chain.ChainedMixin]) -> chain.ChainCheck:
    with db.sessions() as session:
        return chain.verify(session, model, ChainHead)


def purger(db: Db, clock: Clock) -> Purger:
    return Purger([RULE], db.sessions, PurgeRun, clock, batch_size=3, sleep=lambda _: None)


@pytest.mark.notice("11")
@pytest.mark.notice("12.1", "12.2")
@pytest.mark.rule("R-SEC-1")
@pytest.mark.rule("R-RET-1")
def test_the_purge_removes_exactly_the_records_past_six_years_and_the_chain_still_checks_out(db: Db) -> None:
    fill(db)
    clock = Clock(NOW)
    [run] = purger(db, clock).run_once()
    assert run.purged == 2 * DUE and run.cutoff == SIX_YEARS_AGO
    kept = list(range(DUE + 1, len(AGES) + 1))
    assert seqs(db, AuditLog) == kept and seqs(db, TransferLog) == kept
    for model in (AuditLog, TransferLog):
        assert verify(db, model) == chain.ChainCheck(model.CHAIN, True, len(kept), anchor_seq=DUE)
    with db.sessions() as session:
        assert [(r.rule, r.purged) for r in session.scalars(select(PurgeRun))] == [(RULE.name, 2 * DUE)]
        assert chain.anchor(session, ChainHead, "audit")[0] == DUE
    # Nothing more is due: a second run removes nothing; new rows link on as before.
    assert purger(db, clock).run_once()[0].purged == 0
    with db.sessions() as session:
        audit.record(session, AuditLog, ChainHead, person(AGENT, "agent"), [audit.Access(ALICE, "ticket.read")],
                     at=NOW)
        session.commit()
    assert verify(db, AuditLog).intact and verify(db, AuditLog).checked == len(kept) + 1


@pytest.mark.notice("11")
@pytest.mark.rule("R-SEC-1")
def test_after_the_purge_an_edit_or_a_removal_of_a_remaining_row_is_still_caught_with_its_seq(db: Db) -> None:
    fill(db)
    purger(db, Clock(NOW)).run_once()
    with db.engine.begin() as conn:
        # Someone with DDL rights drops the triggers, then edits and removes remaining rows.
        append_only.uninstall(conn, "audit_log")
        append_only.uninstall(conn, "transfer_log")
        conn.execute(text("UPDATE audit_log SET subject_id = 'someone-else' WHERE seq = 6"))
        conn.execute(text("DELETE FROM transfer_log WHERE seq = 5"))  # the first row after the anchor
    edited, removed = verify(db, AuditLog), verify(db, TransferLog)
    assert (edited.intact, edited.broken_at_seq, edited.anchor_seq) == (False, 6, DUE)
    assert "does not match its hash" in edited.problem
    assert (removed.intact, removed.broken_at_seq) == (False, 5) and "missing" in removed.problem


@pytest.mark.notice("11")
@pytest.mark.rule("R-SEC-1")
@pytest.mark.parametrize("statement", [
    "DELETE FROM audit_log WHERE seq = 1",       # old enough, but not below an anchor the purge wrote
    "DELETE FROM audit_log WHERE seq = 7",       # recent
    "UPDATE audit_log SET subject_id = 'x' WHERE seq = 1",
])
def test_the_database_still_refuses_every_other_change(db: Db, statement: str) -> None:
    fill(db)
    with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
        conn.execute(text(statement))
    assert seqs(db, AuditLog) == list(range(1, len(AGES) + 1)) and verify(db, AuditLog).intact


@pytest.mark.notice("11")
@pytest.mark.rule("R-SEC-1")
def test_moving_the_anchor_by_hand_does_not_let_a_recent_row_be_deleted(db: Db) -> None:
    fill(db)
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO chain_heads (name, seq, hash) VALUES ('audit.anchor', 99, :h)"),
                     {"h": chain.GENESIS})
    for seq in (6, 7):  # a month and more younger than 6 years (the database's clock), though "below" the anchor
        with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_log WHERE seq = :s"), {"s": seq})
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(AuditLog)) == len(AGES)


@pytest.mark.notice("12.1")
@pytest.mark.rule("R-RET-2")
def test_a_held_subjects_records_and_those_after_them_are_kept_until_the_hold_is_released(db: Db) -> None:
    fill(db)
    with db.sessions() as session:
        holds.placed(session, LegalHold, "h" * 32, "subject", BOB, "litigation", NOW + timedelta(days=90))
        session.commit()
    clock = Clock(NOW)
    assert purger(db, clock).run_once()[0].purged == 2 * 2  # seq 1 and 2 of each chain: Bob's seq 3 stops it
    assert seqs(db, AuditLog)[0] == seqs(db, TransferLog)[0] == 3
    assert verify(db, AuditLog).intact and verify(db, TransferLog).intact
    with db.sessions() as session:
        holds.released(session, LegalHold, "h" * 32, "subject", BOB, NOW)
        session.commit()
    assert purger(db, clock).run_once()[0].purged == 2 * (DUE - 2)
    assert seqs(db, AuditLog) == list(range(DUE + 1, len(AGES) + 1))
    assert verify(db, AuditLog) == chain.ChainCheck("audit", True, len(AGES) - DUE, anchor_seq=DUE)
