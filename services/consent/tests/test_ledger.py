"""The consent ledger under concurrency and tampering: appends for one subject are serialised by the
subject's head row, so the chain never forks; the head exposes a removed newest entry; the database
refuses to change or delete entries while the subject's head exists."""

from __future__ import annotations

import threading
import time

import pytest
from consent import ledger
from consent.ledger import CHANNELS, MARKETING_CHANNELS
from consent.models import LedgerEntry, LedgerHead
from servicekit import append_only
from servicekit.testing import person
from sqlalchemy import delete, func, select
from sqlalchemy.exc import DBAPIError

from .conftest import World
from .test_rules import DPO
from .test_sending import ADA, sign_up


@pytest.mark.rule("R-MKT-1", "R-WITHDRAW-1")
def test_concurrent_changes_for_one_subject_keep_the_chain_whole_and_the_row_in_step(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    sign_up(world, email=True)
    hash_of = ledger.entry_hash

    def slow_hash(prev_hash: str, entry: LedgerEntry) -> str:
        time.sleep(0.002)  # widen the window between reading the head and writing after it
        return hash_of(prev_hash, entry)

    monkeypatch.setattr(ledger, "entry_hash", slow_hash)
    errors: list[BaseException] = []
    channels = ("email", "telephone", "third_party", "cookies_analytics")

    def changer(n: int) -> None:
        try:
            for i in range(6):
                if n % 2:
                    # Staff recording an objection again and again: once every channel is off, the row does
                    # not change, so nothing but the ledger's head orders these appends.
                    world.consent.record_opt_out(DPO, ADA, [], True, "dpo_email")
                else:
                    world.consent.update(person(ADA), {channels[n]: i % 2 == 0}, "preference_page")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=changer, args=(n,)) for n in range(len(channels))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    bad, entries = world.consent.verify_ledger(ADA)
    assert bad is None and entries >= 3 + len(channels) * 3
    with world.uow() as uow:
        entries_now = uow.repo.ledger(ADA)
        assert [e.seq for e in entries_now] == list(range(1, entries + 1))
        prefs = uow.repo.preferences(ADA)
        assert prefs is not None
        # Every change was made on the state before it: the row is what the ledger says.
        replayed: dict[str, bool] = {}
        for e in entries_now:
            replayed.update(dict.fromkeys(MARKETING_CHANNELS, False) if e.channel == "all" else {e.channel: e.granted})
        assert {c: getattr(prefs, CHANNELS[c][1]) for c in replayed} == replayed


@pytest.mark.rule("R-MKT-1")
def test_the_database_refuses_to_change_or_delete_a_subjects_ledger(world: World) -> None:
    sign_up(world, email=True)
    for statement in (delete(LedgerEntry).where(LedgerEntry.seq == 3),
                      LedgerEntry.__table__.update().values(granted=False)):
        with world.uow() as uow, pytest.raises(DBAPIError, match="append-only"):
            uow.session.execute(statement)


@pytest.mark.rule("R-MKT-1")
def test_removing_the_newest_entry_is_detected_by_the_head(world: World) -> None:
    sign_up(world, email=True)
    world.consent.update(person(ADA), {"email": False}, "preference_page")
    assert world.consent.verify_ledger(ADA) == (None, 4)
    with world.uow() as uow:
        # Someone who drops the triggers first and removes the withdrawal: the chain before it is intact.
        append_only.uninstall(uow.session.connection(), "consent_ledger")
        uow.session.execute(delete(LedgerEntry).where(LedgerEntry.subject_id == ADA, LedgerEntry.seq == 4))
        uow.commit()
    assert world.consent.verify_ledger(ADA) == (4, 3)
    with world.uow() as uow:  # removing the head as well does not hide it either
        uow.session.execute(delete(LedgerHead).where(LedgerHead.subject_id == ADA))
        uow.commit()
    assert world.consent.verify_ledger(ADA)[0] == 1


def test_erase_removes_the_head_with_the_ledger(world: World) -> None:
    sign_up(world, email=True)
    world.consent.erase(ADA)
    with world.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(LedgerHead)) == 0
        assert uow.session.scalar(select(func.count()).select_from(LedgerEntry)) == 0
    assert world.consent.verify_ledger(ADA) == (None, 0)
