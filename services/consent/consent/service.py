"""Consent's rules: preferences off until opted in, every change on the hash-chained ledger.

Knows nothing of gRPC, NATS or SQL: it works through a unit of work and a Directory (identity).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from servicekit.audit import SUPPORT, Access
from servicekit.caller import Principal
from servicekit.db import UnitOfWork, UnitOfWorkFactory, utcnow
from servicekit.errors import Conflict, InvalidArgument, NotFound, PermissionDenied, Unavailable
from servicekit.holds import kept_for
from servicekit.logs import get_logger
from servicekit.personal_data import table_of
from servicekit.region import RegionGuard
from servicekit.subject_data import Erasure, Export, SubjectDataRules

from . import unsubscribe
from .decisions import Decision, check_question, decide, granted, latest, stale
from .directory import Contact, Directory, DirectoryUnavailable
from .keys import Keys
from .ledger import MARKETING_CHANNELS, SOURCES, apply_changes, entry_hash, record_objection
from .models import GENESIS, LedgerEntry, OutgoingMessage, Preferences, ProductHolding, Repository
from .suppression import address_hashes

log = get_logger(__name__)
STAFF_ROLES = ("dpo", "admin")
# Audit purposes: honouring an opt-out (4.1.5); checking the records' integrity (4.1.3).
MARKETING_PURPOSE = "4.1.5"
KEPT_SUPPRESSION = ("suppression_list", "keyed hash of the e-mail address and telephone number, so marketing is "
                                        "never resumed without fresh consent (UK GDPR Art. 21(3), PECR)")
KEPT_ACCESS_LOG = ("access_log", "kept as the record of who accessed the data (UK GDPR Art. 5(1)(f), 32, 33)")
MAX_BATCH = 10_000
CHUNK = 500  # ids per IN (...) query: well under SQLite's parameter limit
IDENTITY_AWAY = "cannot reach identity to record the suppression; try again"


@dataclass(frozen=True)
class PreferencesView:
    prefs: Preferences
    reconsent_required: bool


class ConsentService(SubjectDataRules):
    def __init__(self, uow: UnitOfWorkFactory[Repository], region: str, notice_version: str,
                 keys: Keys | None = None, directory: Directory | None = None,
                 clock: Callable[[], datetime] = utcnow, unsubscribe_days: int = 90) -> None:
        self.uow = uow
        self.guard = RegionGuard(region)
        self.notice_version = notice_version
        self.keys = keys or Keys.from_secret(b"\0" * 32)
        self.directory = directory
        self.clock = clock
        self.unsubscribe_days = unsubscribe_days

    # --- notices in force ---------------------------------------------------------
    def current_notice(self, uow: UnitOfWork[Repository]) -> tuple[str, int]:
        """(the privacy notice's version in force, the place of the newest publication of either document).

        The ledger records which privacy notice a choice was made under (a terms version is not
        one); the seq orders the choice after everything published so far, terms included.
        """
        privacy = uow.repo.latest_notice("privacy")
        latest = uow.repo.latest_notice()
        return (privacy.version if privacy else self.notice_version), (latest.seq if latest else 0)

    def seq_of(self, uow: UnitOfWork[Repository], version: str) -> int:
        """A version's place in the order; one consent has not published (identity's configured label for
        the sign-up form) counts as the current one, since the form is being shown now."""
        found = uow.repo.notice(version)
        return found.seq if found else self.current_notice(uow)[1]

    # --- from events -------------------------------------------------------------
    def create_defaults(self, uow: UnitOfWork[Repository], subject_id: str, region: str, choices: dict[str, bool],
                        notice_version: str, gpc: bool = False) -> None:
        """Preferences of a new account: all off, then the sign-up form's opt-ins (section 6.1).

        With Global Privacy Control on the sign-up request, third-party sharing and marketing cookies
        are opted out by the signal (source gpc), whatever the form said, as on the preference page."""
        self.guard.check(region)
        if uow.repo.preferences(subject_id) is not None:
            return
        prefs = Preferences(subject_id=subject_id, marketing_email=False, marketing_telephone=False,
                            third_party_marketing=False, cookies_analytics=False, cookies_marketing=False,
                            notice_version=notice_version, updated_at=self.clock(), objected_at=None,
                            email_granted_at=None, email_basis_seq=0, telephone_granted_at=None,
                            telephone_basis_seq=0, third_party_granted_at=None, third_party_basis_seq=0,
                            last_notice_seen="")
        uow.repo.add(prefs)
        seq, now = self.seq_of(uow, notice_version), self.clock()
        if gpc:
            # The signal wins over an opt-in in the same request (R-COOKIE-1): the form's answer on
            # sharing is not taken, and the opt-outs are on the ledger as the signal's.
            choices = {k: v for k, v in choices.items() if k not in ("third_party", "cookies_marketing")}
            apply_changes(uow, prefs, {"third_party": False, "cookies_marketing": False}, "gpc", notice_version, seq,
                          now, record_unchanged=True)
        # Every sign-up answer is recorded, "no" included: proof of what was asked and when (R-MKT-1).
        apply_changes(uow, prefs, choices, "signup_form", notice_version, seq, now, record_unchanged=True)
        try:
            self._note_listed_address(uow, prefs)
        except DirectoryUnavailable:
            # Not worth losing the account's preferences over (the event would end dead-lettered): the
            # sign-up's own answers are newer than any entry, and the sender checks the list at send time.
            log.warning("identity unavailable; suppression list not checked at sign-up")

    def record_product(self, uow: UnitOfWork[Repository], subject_id: str, product: str) -> None:
        if product and uow.repo.holding(subject_id, product) is None:
            uow.repo.add(ProductHolding(subject_id=subject_id, product=product, since=self.clock()))

    # --- the person's own preferences ----------------------------------------------
    def get(self, principal: Principal, subject_id: str = "") -> PreferencesView:
        target = self._target(principal, subject_id)
        with self.uow() as uow:
            prefs = self._prefs(uow, target)
            return self._view(uow, prefs)

    def update(self, principal: Principal, changes: dict[str, bool], source: str, gpc: bool = False
               ) -> PreferencesView:
        if principal.is_service:
            raise PermissionDenied("preferences are changed by their owner")
        self.guard.check(principal.region)
        source = source or "preference_page"
        if source not in SOURCES or source in ("gpc", "unsubscribe_link", "dpo_email", "suppression"):
            raise InvalidArgument("source must be signup_form or preference_page", "invalid_source")
        with self.uow() as uow:
            prefs = self._prefs(uow, principal.subject_id, lock=True)
            version, seq = self.current_notice(uow)
            now = self.clock()
            # Consent given before a purpose change: a grant now of such a channel is the fresh consent asked
            # for, and is recorded even where the channel is already on, so one action renews that channel.
            before_change = stale(prefs, uow.repo.purpose_floor())
            if gpc:
                # Global Privacy Control: an opt-out of sale/sharing and marketing cookies that the
                # same request cannot override (R-COOKIE-1).
                changes = {k: v for k, v in changes.items() if k not in ("third_party", "cookies_marketing")}
                apply_changes(uow, prefs, {"third_party": False, "cookies_marketing": False}, "gpc", version, seq, now)
            apply_changes(uow, prefs, changes, source, version, seq, now, regrant=before_change)
            uow.commit()
            return self._view(uow, prefs)

    def _view(self, uow: UnitOfWork[Repository], prefs: Preferences) -> PreferencesView:
        # While any consent that is on predates the latest purpose change.
        return PreferencesView(prefs, bool(stale(prefs, uow.repo.purpose_floor())))

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
    def _prefs(uow: UnitOfWork[Repository], subject_id: str, lock: bool = False) -> Preferences:
        prefs = uow.repo.preferences_for_change(subject_id) if lock else uow.repo.preferences(subject_id)
        if prefs is None:
            # The account.created event has not been handled yet (or the subject is unknown).
            raise Conflict("preferences are not set up yet; try again shortly", "not_ready")
        return prefs

    # --- opt-out by the other routes of section 8.1 ------------------------------------
    def record_opt_out(self, principal: Principal, subject_id: str, channels: list[str], objection: bool,
                       source: str) -> PreferencesView:
        """Staff record a request that came by e-mail (8.1(c)); the rights service an objection."""
        if principal.is_service:
            if principal.subject_id not in ("rights", "cli"):
                raise PermissionDenied("not allowed for this caller")
        elif principal.role not in STAFF_ROLES:
            raise PermissionDenied("not allowed for this role")
        else:
            self.guard.check(principal.region)
        source = source or "dpo_email"
        if source not in ("dpo_email", "rights_request"):
            raise InvalidArgument("source must be dpo_email or rights_request", "invalid_source")
        unknown = [c for c in channels if c not in MARKETING_CHANNELS]
        if unknown:
            raise InvalidArgument(f"channels must be among {', '.join(MARKETING_CHANNELS)}", "invalid_channel")
        recorded_by = "" if principal.is_service else principal.subject_id
        with self.uow() as uow:
            prefs = uow.repo.preferences_for_change(subject_id) if subject_id else None
            if prefs is None:
                raise NotFound("subject not found")
            version, seq = self.current_notice(uow)
            now = self.clock()
            if objection:
                record_objection(uow, prefs, source, version, now, recorded_by)
                if self._suppress(uow, subject_id, "objection", now):
                    # On the row too, so CanContact and campaigns refuse older consent without the address.
                    prefs.address_suppressed_at = now
            else:
                apply_changes(uow, prefs, {c: False for c in channels or MARKETING_CHANNELS}, source, version, seq,
                              now, recorded_by=recorded_by)
            # Someone other than the subject changed their consent: on the audit trail, in this
            # transaction (R-SEC-1). Purpose 4.1.5: honouring an opt-out of marketing.
            action = "consent.objection_recorded" if objection else "consent.opt_out_recorded"
            uow.repo.audit(principal, [Access(subject_id, action, "all" if objection else
                                              ",".join(channels or MARKETING_CHANNELS))], MARKETING_PURPOSE, now)
            uow.commit()
            return self._view(uow, prefs)

    def check_unsubscribe(self, token: str) -> tuple[str, bool]:
        claim = unsubscribe.verify(self.keys.unsubscribe, token, self.clock())
        with self.uow() as uow:
            prefs = uow.repo.preferences(claim.subject_id)
            return claim.channel, prefs is None or not self._granted(prefs, claim.channel)

    def unsubscribe(self, token: str) -> tuple[str, bool]:
        """One click, no session (RFC 8058); idempotent: a second click changes nothing."""
        claim = unsubscribe.verify(self.keys.unsubscribe, token, self.clock())
        with self.uow() as uow:
            prefs = uow.repo.preferences_for_change(claim.subject_id)
            if prefs is None or not self._granted(prefs, claim.channel):
                return claim.channel, True  # erased, or already off: the same 200 answer
            version, seq = self.current_notice(uow)
            apply_changes(uow, prefs, {claim.channel: False}, "unsubscribe_link", version, seq, self.clock())
            uow.commit()
            return claim.channel, False

    def unsubscribe_token(self, subject_id: str, channel: str, message_id: str) -> str:
        expires = self.clock() + timedelta(days=self.unsubscribe_days)
        return unsubscribe.issue(self.keys.unsubscribe,
                                 unsubscribe.UnsubscribeClaim(subject_id, channel, message_id), expires)

    @staticmethod
    def _granted(prefs: Preferences, channel: str) -> bool:
        return granted(prefs, channel)

    def on_rights_request(self, uow: UnitOfWork[Repository], subject_id: str, kind: str) -> None:
        """React at once to a rights request (rights.request.received), before any step runs:
        withdrawal of consent takes effect for the future now (R-WITHDRAW-1); for an erasure the
        addresses' keyed hashes are taken while identity still has them (R-MKT-6)."""
        prefs = uow.repo.preferences_for_change(subject_id) if kind == "withdraw_consent" else None
        now = self.clock()
        if kind == "withdraw_consent" and prefs is not None:
            version, seq = self.current_notice(uow)
            apply_changes(uow, prefs, {c: False for c in (*MARKETING_CHANNELS, "cookies_analytics",
                                                          "cookies_marketing")}, "rights_request", version, seq, now)
        elif (kind == "erasure" and uow.repo.has_preferences(subject_id)
              and self._suppress(uow, subject_id, "erasure", now)):
            uow.repo.mark_address_suppressed(subject_id, now)

    # --- suppression ---------------------------------------------------------------------
    def _suppress(self, uow: UnitOfWork[Repository], subject_id: str, reason: str, now: datetime) -> bool:
        """Put the subject's addresses (keyed hashes) on the suppression list; False if identity has none.

        The caller records the time on the subject's row as well (so CanContact and campaigns refuse older
        consent without the address), unless the row is about to go."""
        return self._list(uow, self._contact(subject_id), reason, now)

    def _contact(self, subject_id: str) -> Contact | None:
        """The subject's addresses from identity (None: no account, or no directory)."""
        if self.directory is None:
            return None
        try:
            return self.directory.contact(subject_id)
        except DirectoryUnavailable as exc:
            raise Unavailable(IDENTITY_AWAY) from exc

    def _contacts(self, subject_ids: Sequence[str]) -> list[Contact | Unavailable | None]:
        """`_contact` of each subject by one call to identity: what `_contact` would raise for one stands in
        its place; raises it if identity cannot answer at all."""
        if self.directory is None:
            return [None] * len(subject_ids)
        try:
            found = self.directory.contacts(subject_ids)
        except DirectoryUnavailable as exc:
            raise Unavailable(IDENTITY_AWAY) from exc
        return [Unavailable(IDENTITY_AWAY) if isinstance(c, DirectoryUnavailable) else c for c in found]

    def _list(self, uow: UnitOfWork[Repository], contact: Contact | None, reason: str, now: datetime) -> bool:
        if contact is None:
            return False
        uow.repo.suppress(address_hashes(self.keys.suppression, contact.email, contact.phone), reason, now)
        return True

    def on_address_changed(self, uow: UnitOfWork[Repository], subject_id: str) -> None:
        """The subject's e-mail or phone changed (identity.account.rectified): if the new address is on
        the suppression list, record when it went there; the hashes are compared, never kept."""
        prefs = uow.repo.preferences(subject_id)
        if prefs is None:
            return
        try:
            self._note_listed_address(uow, prefs)
        except DirectoryUnavailable as exc:
            raise Unavailable("cannot reach identity to check the suppression list; try again") from exc

    def _note_listed_address(self, uow: UnitOfWork[Repository], prefs: Preferences) -> None:
        """Record on the row when the subject's present addresses went on the suppression list, if they did
        (so consent older than that stops counting, e.g. on a re-import); the hashes are compared, never kept."""
        if self.directory is None:
            return
        contact = self.directory.contact(prefs.subject_id)
        if contact is not None:
            # Never lowered: leaving a suppressed address does not revive consent given before it.
            prefs.address_suppressed_at = latest(prefs.address_suppressed_at,
                                                 self.suppressed_since(uow, contact.email, contact.phone))

    def suppressed_since(self, uow: UnitOfWork[Repository], email: str, phone: str) -> datetime | None:
        hashes = [h for _, h in address_hashes(self.keys.suppression, email, phone)]
        return uow.repo.suppressed_since(hashes) if hashes else None

    # --- decisions -----------------------------------------------------------------
    def can_contact(self, subject_id: str, channel: str, purpose: str) -> Decision:
        check_question(channel, purpose)
        with self.uow() as uow:
            return decide(uow.repo.preferences(subject_id), channel, purpose, uow.repo.restricted(subject_id),
                          uow.repo.purpose_floor())

    def can_contact_batch(self, subject_ids: list[str], channel: str, purpose: str) -> list[Decision]:
        check_question(channel, purpose)
        if len(subject_ids) > MAX_BATCH:
            raise InvalidArgument(f"at most {MAX_BATCH} subjects per call", "too_many")
        decisions: list[Decision] = []
        with self.uow() as uow:
            floor = uow.repo.purpose_floor()
            for start in range(0, len(subject_ids), CHUNK):
                chunk = subject_ids[start:start + CHUNK]
                prefs = uow.repo.preferences_of(chunk)
                restricted = uow.repo.restricted_among(chunk)
                decisions += [decide(prefs.get(s), channel, purpose, s in restricted, floor) for s in chunk]
        return decisions

    def verify_ledger(self, subject_id: str, principal: Principal | None = None) -> tuple[int | None, int]:
        """(seq of the first entry that breaks the chain, or None if it holds; entries checked).

        An edited entry no longer matches its hash (or the next one no longer links to it); a removed
        entry leaves a gap; removing the newest ones leaves the subject's head pointing past the end.
        A caller (the DPO, an admin, a service) is checked and put on the audit trail.
        """
        with self.uow() as uow:
            if principal is not None:
                if not principal.is_service and principal.role not in STAFF_ROLES:
                    raise PermissionDenied("not allowed for this role")
                uow.repo.audit(principal, [Access(subject_id, "consent.ledger_verified")], SUPPORT, self.clock())
                uow.commit()
            entries = uow.repo.ledger(subject_id)
            return self._check_chain(entries, uow.repo.ledger_head(subject_id)), len(entries)

    @staticmethod
    def _check_chain(entries: list[LedgerEntry], head: tuple[int, str] | None) -> int | None:
        prev, expected = GENESIS, 1
        for entry in entries:
            if entry.seq != expected or entry.prev_hash != prev or entry_hash(prev, entry) != entry.hash:
                return expected if entry.seq != expected else entry.seq
            prev, expected = entry.hash, expected + 1
        newest = expected - 1
        if head is None:
            return 1 if entries else None  # a ledger without its head: the head was removed
        head_seq, head_hash = head
        if head_seq > newest:
            return newest + 1  # the newest entries were removed
        if head_seq < newest:
            return head_seq + 1  # entries added behind the head's back
        return None if head_hash == prev else newest  # the newest entry was replaced

    # --- the personal-data contract ---------------------------------------------------
    def export(self, subject_id: str) -> Export:
        """Preferences, ledger, communications sent, products held, and who (role, not identity) accessed them."""
        with self.uow() as uow:
            prefs = uow.repo.preferences(subject_id)
            return Export([
                table_of("preferences", "marketing", Preferences, [prefs] if prefs else []),
                table_of("consent_ledger", "marketing", LedgerEntry, uow.repo.ledger(subject_id)),
                table_of("communications", "marketing", OutgoingMessage, uow.repo.communications(subject_id),
                         exclude=("token_sealed", "lease_id", "lease_until", "dedup_key", "token_id")),
                table_of("product_holdings", "usage", ProductHolding,
                         uow.repo.holdings_of(subject_id)),
                uow.repo.access_log_of(subject_id),
            ])

    def erase(self, subject_id: str) -> Erasure:
        """Preferences, ledger and communications go; only the keyed hash of the addresses stays
        (R-MKT-6), so a re-sign-up or re-import is not marketed to without fresh consent.

        A legal hold on the subject (12.1) keeps everything, reported as kept with why; the data is
        then only stored for the claim: the subject is restricted, so no marketing goes out.
        """
        # Identity is asked before the transaction, so no database lock waits on the call.
        return self._erase(subject_id, self._contact(subject_id))

    def erase_many(self, subject_ids: Sequence[str]) -> list[Erasure | Exception]:
        """Each subject erased on its own as `erase` does (its own transaction; one failing leaves the others
        done), their addresses read from identity by one call for the batch, not one each."""
        try:
            contacts = self._contacts(subject_ids)
        except Unavailable:
            # Identity away: every subject answers as `erase` would (retried), none is erased unlisted.
            return [Unavailable(IDENTITY_AWAY) for _ in subject_ids]
        results: list[Erasure | Exception] = []
        for subject_id, contact in zip(subject_ids, contacts, strict=True):
            if isinstance(contact, Unavailable):  # this one's address cannot be read now: not erased unlisted
                results.append(contact)
                continue
            try:
                results.append(self._erase(subject_id, contact))
            except Exception as exc:  # as SubjectDataRules.erase_many: it stands in the subject's place
                results.append(exc)
        return results

    def _erase(self, subject_id: str, contact: Contact | None) -> Erasure:
        """`erase` with the subject's addresses as identity gave them."""
        with self.uow() as uow:
            now = self.clock()
            suppressed = self._list(uow, contact, "erasure", now)
            held = uow.repo.subject_holds(subject_id)
            if held:
                if uow.repo.has_preferences(subject_id):
                    if suppressed:
                        uow.repo.mark_address_suppressed(subject_id, now)
                    uow.repo.set_restricted(subject_id, True)
                count = 0
            else:
                # Set-based deletes; the row's suppression time is not written first, as the row goes.
                count = uow.repo.erase(subject_id)
            uow.commit()
        kept = [("preferences, consent ledger and communications", kept_for(h)) for h in held]
        if suppressed:
            kept.append(KEPT_SUPPRESSION)
        return Erasure(count, [*kept, KEPT_ACCESS_LOG])

    def set_restricted(self, subject_id: str, restricted: bool) -> bool:
        with self.uow() as uow:
            uow.repo.set_restricted(subject_id, restricted)
            uow.commit()
            return restricted

