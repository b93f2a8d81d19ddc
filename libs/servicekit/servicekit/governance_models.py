"""The governance tables a service adds to its models, named once so the runtime can find them.

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
