"""Consent's rules: preferences off until opted in, every change on the hash-chained ledger."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from kaseum.events.v1 import consent_events_pb2 as ev
from servicekit.caller import Principal
from servicekit.db import UnitOfWork, UnitOfWorkFactory, as_utc, new_id, utcnow
from servicekit.errors import Conflict, InvalidArgument, NotFound, PermissionDenied
from servicekit.personal_data import table_of
from servicekit.region import RegionGuard
from servicekit.subject_data import Erasure, Export, SubjectDataRules

from .models import LedgerEntry, Preferences, Repository

# Each ledger "channel" and the Preferences field it drives, with its purpose.
CHANNELS: dict[str, tuple[str, str]] = {
    "email": ("marketing", "marketing_email"),
    "telephone": ("marketing", "marketing_telephone"),
    "third_party": ("third_party_marketing", "third_party_marketing"),
    "cookies_analytics": ("cookies", "cookies_analytics"),
    "cookies_marketing": ("cookies", "cookies_marketing"),
}
SOURCES = {"signup_form", "preference_page", "unsubscribe_link", "dpo_email", "gpc", "rights_request"}
GENESIS = "0" * 64


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


def entry_hash(prev_hash: str, entry: LedgerEntry) -> str:
    """Hash of an entry's facts and its predecessor's hash: editing any row breaks the chain."""
    facts = json.dumps([prev_hash, entry.subject_id, entry.seq, entry.purpose, entry.channel,
                        entry.granted, entry.source, entry.notice_version,
                        as_utc(entry.created_at).isoformat()], separators=(",", ":"))
    return hashlib.sha256(facts.encode()).hexdigest()


class ConsentService(SubjectDataRules):
    def __init__(self, uow: UnitOfWorkFactory[Repository], region: str, notice_version: str) -> None:
        self.uow = uow
        self.guard = RegionGuard(region)
        self.notice_version = notice_version

    # --- from events -------------------------------------------------------------
    def create_defaults(self, uow: UnitOfWork[Repository], subject_id: str, region: str, choices: dict[str, bool],
                        notice_version: str) -> None:
        """Preferences of a new account: all off, then the sign-up form's opt-ins (section 6.1)."""
        self.guard.check(region)
        if uow.repo.preferences(subject_id) is not None:
            return
        prefs = Preferences(subject_id=subject_id, marketing_email=False, marketing_telephone=False,
                            third_party_marketing=False, cookies_analytics=False, cookies_marketing=False,
                            notice_version=notice_version, updated_at=utcnow())
        uow.repo.add(prefs)
        # Every sign-up answer is recorded, "no" included: proof of what was asked and when (R-MKT-1).
        self._change(uow, prefs, choices, "signup_form", notice_version, record_unchanged=True)

    # --- the person's own preferences ----------------------------------------------
    def get(self, principal: Principal, subject_id: str = "") -> Preferences:
        target = self._target(principal, subject_id)
        with self.uow() as uow:
            return self._prefs(uow, target)

    def update(self, principal: Principal, changes: dict[str, bool], source: str) -> Preferences:
        if principal.is_service:
            raise PermissionDenied("preferences are changed by their owner")
        self.guard.check(principal.region)
        source = source or "preference_page"
        if source not in SOURCES:
            raise InvalidArgument(f"source must be one of {', '.join(sorted(SOURCES))}", "invalid_source")
        with self.uow() as uow:
            prefs = self._prefs(uow, principal.subject_id)
            self._change(uow, prefs, changes, source, self.notice_version)
            uow.commit()
            return prefs

    def _target(self, principal: Principal, subject_id: str) -> str:
        if principal.is_service:
            if not subject_id:
                raise InvalidArgument("subject_id is required", "missing_field")
            return subject_id
        self.guard.check(principal.region)
        if subject_id and subject_id != principal.subject_id:
            raise NotFound("preferences not found")
        return principal.subject_id

    @staticmethod
    def _prefs(uow: UnitOfWork[Repository], subject_id: str) -> Preferences:
        prefs = uow.repo.preferences(subject_id)
        if prefs is None:
            # The account.created event has not been handled yet (or the subject is unknown).
            raise Conflict("preferences are not set up yet; try again shortly", "not_ready")
        return prefs

    def _change(self, uow: UnitOfWork[Repository], prefs: Preferences, changes: dict[str, bool], source: str,
                notice_version: str, record_unchanged: bool = False) -> None:
        last = uow.repo.last_entry(prefs.subject_id)
        prev_hash, seq = (last.hash, last.seq) if last else (GENESIS, 0)
        now = utcnow()
        withdrawn: list[tuple[str, str]] = []
        for channel, granted in changes.items():
            purpose, field = CHANNELS[channel]
            if getattr(prefs, field) == granted and not record_unchanged:
                continue
            setattr(prefs, field, granted)
            seq += 1
            entry = LedgerEntry(id=new_id(), subject_id=prefs.subject_id, seq=seq, purpose=purpose,
                                channel=channel, granted=granted, source=source,
                                notice_version=notice_version, created_at=now, prev_hash=prev_hash)
            entry.hash = prev_hash = entry_hash(entry.prev_hash, entry)
            uow.repo.add(entry)
            if not granted:
                withdrawn.append((purpose, channel))
        if seq == (last.seq if last else 0):
            return
        prefs.updated_at = now
        prefs.notice_version = notice_version
        uow.events.publish("consent.preferences.changed", prefs.subject_id, ev.PreferencesChanged(
            subject_id=prefs.subject_id, marketing_email=prefs.marketing_email,
            marketing_telephone=prefs.marketing_telephone,
            third_party_marketing=prefs.third_party_marketing, source=source))
        for purpose, channel in withdrawn:
            uow.events.publish("consent.consent.withdrawn", prefs.subject_id, ev.ConsentWithdrawn(
                subject_id=prefs.subject_id, purpose=purpose, channel=channel))

    # --- decisions -----------------------------------------------------------------
    def can_contact(self, subject_id: str, channel: str, purpose: str) -> Decision:
        if channel not in ("email", "telephone"):
            raise InvalidArgument("channel must be email or telephone", "invalid_channel")
        if purpose not in ("marketing", "service"):
            raise InvalidArgument("purpose must be marketing or service", "invalid_purpose")
        with self.uow() as uow:
            prefs = uow.repo.preferences(subject_id)
            if prefs is None:
                return Decision(False, "unknown_subject")
            if purpose == "service":
                return Decision(True, "service_message")
            if uow.repo.restricted(subject_id):
                return Decision(False, "restricted")
            allowed = prefs.marketing_email if channel == "email" else prefs.marketing_telephone
            return Decision(allowed, "consented" if allowed else "no_consent")

    def verify_ledger(self, subject_id: str) -> int | None:
        """Seq of the first entry whose hash does not match, or None if the chain holds."""
        with self.uow() as uow:
            prev = GENESIS
            for entry in uow.repo.ledger(subject_id):
                if entry.prev_hash != prev or entry_hash(prev, entry) != entry.hash:
                    return entry.seq
                prev = entry.hash
        return None

    # --- the personal-data contract ---------------------------------------------------
    def export(self, subject_id: str) -> Export:
        with self.uow() as uow:
            prefs = uow.repo.preferences(subject_id)
            return Export([
                table_of("preferences", "marketing", Preferences, [prefs] if prefs else []),
                table_of("consent_ledger", "marketing", LedgerEntry, uow.repo.ledger(subject_id)),
            ])

    def erase(self, subject_id: str) -> Erasure:
        with self.uow() as uow:
            count = uow.repo.erase(subject_id)
            uow.commit()
            return Erasure(count)

    def set_restricted(self, subject_id: str, restricted: bool) -> bool:
        with self.uow() as uow:
            uow.repo.set_restricted(subject_id, restricted)
            uow.commit()
            return restricted
