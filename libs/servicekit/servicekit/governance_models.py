"""The governance tables a service adds to its models, named once so the runtime can find them.

To adopt governance in a service (tickets and rights show every step):
1. models.py: the five classes below and `GOVERNANCE`; give every column of every table
   `info={"category": code}` (codes in data/declarations.json; "none" for no personal data).
2. A migration: `tools/new_migration.py <svc> "governance tables"`, then replace its body with
   `governance_schema.create_v1(op)` (and `drop_v1(op)` in downgrade) plus the service's own changes.
3. `<svc>/governance.py`: `DECLARATION = ServiceDeclaration(...)` with the purposes (4.1.x), recipients
   (5.1.x), transfer kinds and one `RetentionRule` per stored category, each purge function in
   models.py (keyset batches that skip `holds.not_held(...)`).
4. serve(): `runtime.governance(DECLARATION, GOVERNANCE)` before `runtime.serve(...)`: it serves
   kaseum.privacy.v1.Governance, subscribes the legal-hold projection, schedules the purge, checks
   the hosting providers and gives `runtime.transfers` (the transfer gate).
5. The rules: `audit.record(...)` in the unit of work of every staff/reseller/service access to
   personal data; `audit.export_table(...)` in Export; `holds.subject_holds(...)` in Erase
   (report what was kept with `holds.kept_for`).
6. Tests: add the service to SERVICES in tools/tests/test_declarations.py and to WIRED in
   tests/e2e/test_governance_dpo.py.

In a service's models.py:

    class ChainHead(ChainHeadMixin, Base): pass
    class AuditLog(AuditLogMixin, Base): pass
    class TransferLog(TransferLogMixin, Base): pass
    class LegalHold(LegalHoldMixin, Base): pass
    class PurgeRun(PurgeRunMixin, Base): pass
    GOVERNANCE = GovernanceModels(ChainHead, AuditLog, TransferLog, LegalHold, PurgeRun)

and in a new Alembic revision: `governance_schema.create_v1(op)`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .audit import AuditLogMixin
from .chain import ChainHeadMixin
from .holds import LegalHoldMixin
from .retention import PurgeRunMixin
from .transfers import TransferLogMixin


@dataclass(frozen=True)
class GovernanceModels:
    heads: type[ChainHeadMixin]
    audit: type[AuditLogMixin]
    transfers: type[TransferLogMixin]
    holds: type[LegalHoldMixin]
    purge_runs: type[PurgeRunMixin]
