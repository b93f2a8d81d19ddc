"""The consent ledger: append-only records, each hash-chained to the subject's previous one.

Current preferences are derived from it (each change updates the ledger and the row together,
in one transaction); editing a stored record breaks the chain at that record, and removing the
newest one no longer matches the subject's head row. Each change first takes the subject's head
(Repository.lock_ledger), so concurrent changes for one subject are serialised.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from datetime import datetime

from kaseum.events.v1 import consent_events_pb2 as ev
from servicekit.db import UnitOfWork, as_utc, new_id

from .models import LedgerEntry, Preferences, Repository

# Each ledger "channel" and the Preferences field it drives, with its purpose.
CHANNELS: dict[str, tuple[str, str]] = {
    "email": ("marketing", "marketing_email"),
    "telephone": ("marketing", "marketing_telephone"),
    "third_party": ("third_party_marketing", "third_party_marketing"),
    "cookies_analytics": ("cookies", "cookies_analytics"),
    "cookies_marketing": ("cookies", "cookies_marketing"),
}
MARKETING_CHANNELS = ("email", "telephone", "third_party")
# Purposes whose grant is consent to direct marketing (ours, or sharing for third parties' own).
MARKETING_PURPOSES = ("marketing", "third_party_marketing")
# How a change was made (R-MKT-1 "how").
SOURCES = {"signup_form", "preference_page", "unsubscribe_link", "dpo_email", "gpc", "rights_request"}


def entry_hash(prev_hash: str, entry: LedgerEntry) -> str:
    """Hash of an entry's facts and its predecessor's hash: editing any row breaks the chain."""
    facts: list[object] = [prev_hash, entry.subject_id, entry.seq, entry.purpose, entry.channel,
                           entry.granted, entry.source, entry.notice_version, as_utc(entry.created_at).isoformat()]
    if entry.recorded_by:
        facts.append(entry.recorded_by)  # only when set, so entries written before the column keep their hash
    return hashlib.sha256(json.dumps(facts, separators=(",", ":")).encode()).hexdigest()


def _append(uow: UnitOfWork[Repository], prefs: Preferences, purpose: str, channel: str, granted: bool,
            source: str, notice_version: str, now: datetime, recorded_by: str) -> None:
    # Under the subject's head row (lock_ledger): a concurrent change for the same subject waits.
    seq, prev_hash = uow.repo.lock_ledger(prefs.subject_id)
    entry = LedgerEntry(id=new_id(), subject_id=prefs.subject_id, seq=seq + 1, purpose=purpose, channel=channel,
                        granted=granted, source=source, notice_version=notice_version, created_at=now,
                        prev_hash=prev_hash, recorded_by=recorded_by)
    entry.hash = entry_hash(prev_hash, entry)
    uow.repo.add(entry)
    uow.repo.advance_ledger(prefs.subject_id, entry.seq, entry.hash)


def apply_changes(uow: UnitOfWork[Repository], prefs: Preferences, changes: dict[str, bool], source: str,
                  notice_version: str, notice_seq: int, now: datetime, record_unchanged: bool = False,
                  recorded_by: str = "", regrant: Collection[str] = ()) -> bool:
    """Append a record per change and update the current row; publish the events. False if nothing changed.

    `regrant`: marketing channels whose grant, when already on, is recorded anyway, as the fresh consent
    that a purpose change asks for (the person confirms that channel under the new notice in one action).
    """
    withdrawn: list[tuple[str, str]] = []
    changed = False
    for channel, granted in changes.items():
        purpose, field = CHANNELS[channel]
        fresh_grant = channel in regrant and granted and purpose in MARKETING_PURPOSES
        if getattr(prefs, field) == granted and not record_unchanged and not fresh_grant:
            continue
        setattr(prefs, field, granted)
        _append(uow, prefs, purpose, channel, granted, source, notice_version, now, recorded_by)
        changed = True
        if granted and purpose in MARKETING_PURPOSES:
            # A fresh opt-in of this channel only: given under this notice, newer than any suppression, and it
            # ends an objection (express consent to third-party sharing too: without it, it could never count).
            prefs.stamp(channel, now, notice_seq)
            prefs.objected_at = None
        if not granted:
            withdrawn.append((purpose, channel))
    if not changed:
        return False
    prefs.updated_at = now
    prefs.notice_version = notice_version
    _publish(uow, prefs, source, withdrawn)
    return True


def record_objection(uow: UnitOfWork[Repository], prefs: Preferences, source: str, notice_version: str,
                     now: datetime, recorded_by: str) -> None:
    """Objection to direct marketing (Art. 21(2)-(3)): absolute, every channel at once."""
    withdrawn = []
    for channel in MARKETING_CHANNELS:
        purpose, field = CHANNELS[channel]
        if getattr(prefs, field):
            withdrawn.append((purpose, channel))
        setattr(prefs, field, False)
    _append(uow, prefs, "marketing", "all", False, source, notice_version, now, recorded_by)
    prefs.objected_at = now
    prefs.updated_at = now
    _publish(uow, prefs, source, withdrawn or [("marketing", "all")])


def _publish(uow: UnitOfWork[Repository], prefs: Preferences, source: str, withdrawn: list[tuple[str, str]]) -> None:
    uow.events.publish("consent.preferences.changed", prefs.subject_id, ev.PreferencesChanged(
        subject_id=prefs.subject_id, marketing_email=prefs.marketing_email,
        marketing_telephone=prefs.marketing_telephone,
        third_party_marketing=prefs.third_party_marketing, source=source))
    for purpose, channel in withdrawn:
        uow.events.publish("consent.consent.withdrawn", prefs.subject_id, ev.ConsentWithdrawn(
            subject_id=prefs.subject_id, purpose=purpose, channel=channel))
