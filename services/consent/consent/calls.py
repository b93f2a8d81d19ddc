"""The telephone call list for marketing calls (R-MKT-7).

Only people CanContact allows on the telephone are listed, so every one consented to calls: PECR lets
a number be called despite the TPS/CTPS register when its subscriber consented, and each row cites that
consent (date and ledger seq). A register extract, when the operator gives one, is still checked and a
listed number marked, so the call centre sees why it may call it. Numbers come from identity at export
time and are never stored; each exported number is on the audit trail (staff access to contact data).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from servicekit.audit import Access
from servicekit.caller import Principal
from servicekit.db import UnitOfWorkFactory, utcnow
from servicekit.errors import InvalidArgument, Unavailable
from servicekit.logs import get_logger

from .campaigns import require_admin
from .decisions import decide
from .directory import Directory, DirectoryUnavailable
from .models import LedgerEntry, Repository
from .service import CHUNK, MARKETING_PURPOSE, ConsentService
from .suppression import normalise_phone

log = get_logger(__name__)
NOT_REQUIRED = "TPS/CTPS screening not required"
DESPITE_TPS = "on TPS/CTPS; consented: may be called despite TPS"


@dataclass(frozen=True)
class CallRow:
    subject_id: str
    phone: str
    basis: str
    on_tps: bool


@dataclass(frozen=True)
class CallList:
    rows: list[CallRow]
    screened: bool
    tps_numbers: int
    without_phone: int


class CallLists:
    def __init__(self, uow: UnitOfWorkFactory[Repository], consent: ConsentService, directory: Directory,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.uow = uow
        self.consent = consent
        self.directory = directory
        self.clock = clock

    def export(self, principal: Principal, purpose: str, tps: Iterable[str] | None) -> CallList:
        """Everyone who may be called for marketing now; `tps` is the register extract (None: not screened)."""
        require_admin(principal)
        if (purpose or "marketing") != "marketing":
            raise InvalidArgument("purpose must be marketing", "invalid_purpose")
        register = {normalise_phone(n) for n in tps} - {""} if tps is not None else set()
        now = self.clock()
        with self.uow() as uow:
            floor = uow.repo.purpose_floor()
            restricted = uow.repo.all_restricted()
            allowed = sorted((p for p in uow.repo.all_preferences()
                              if decide(p, "telephone", "marketing", p.subject_id in restricted, floor).allowed),
                             key=lambda p: p.subject_id)
            grants: dict[str, LedgerEntry] = {}
            for start in range(0, len(allowed), CHUNK):
                grants.update(uow.repo.latest_grants([p.subject_id for p in allowed[start:start + CHUNK]],
                                                     "telephone"))
            rows: list[CallRow] = []
            without_phone = 0
            for prefs in allowed:
                try:
                    contact = self.directory.contact(prefs.subject_id)
                except DirectoryUnavailable as exc:
                    raise Unavailable("cannot reach identity for the numbers; try again") from exc
                if contact is None:
                    continue  # erased since
                phone = normalise_phone(contact.phone)
                if not phone:
                    without_phone += 1
                    continue
                # As at send time: identity's restriction and a suppression of the number itself count too.
                if not decide(prefs, "telephone", "marketing", contact.restricted, floor,
                              self.consent.suppressed_since(uow, contact.email, contact.phone)).allowed:
                    continue
                grant = grants.get(prefs.subject_id)
                if grant is None:
                    # Cannot happen while the ledger and the row change together; without a basis, no call.
                    log.warning("telephone consent without a ledger grant; left off the call list",
                                subject_id=prefs.subject_id)
                    continue
                on_tps = phone in register
                basis = (f"consented to marketing calls on {grant.created_at:%Y-%m-%d} (ledger seq {grant.seq}): "
                         f"{DESPITE_TPS if on_tps else NOT_REQUIRED}")
                rows.append(CallRow(prefs.subject_id, phone, basis, on_tps))
            # Audited before anything is disclosed: who exported whose number, why (4.1.5, marketing).
            uow.repo.audit(principal, [Access(r.subject_id, "consent.phone_exported", "call_list") for r in rows],
                           MARKETING_PURPOSE, now)
            uow.commit()
        return CallList(rows, tps is not None, len(register), without_phone)
