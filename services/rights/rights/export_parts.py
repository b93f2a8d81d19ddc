"""A service's answer to an export step, stored piece by piece as it streams in (never held whole).

Each piece is written in a short transaction of its own, and only while this worker still holds the
step's lease (checked with the step's row locked): a worker whose lease expired mid-stream stops at
its next piece, so the pieces stored are always one attempt's, whole and in order. The first
transaction removes an earlier attempt's pieces, so a repeated step never duplicates one. The step is
marked done only when the orchestrator records its result, as for every step; until then no download
can read the pieces (the request is not completed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from servicekit.db import UnitOfWork, UnitOfWorkFactory, utcnow

from .models import ExportPart, Repository
from .orchestration import StepCall, StepFailed


class ExportWriter:
    def __init__(self, uow: UnitOfWorkFactory[Repository], clock: Callable[[], datetime] = utcnow) -> None:
        self.uow = uow
        self.clock = clock

    def write(self, call: StepCall, pieces: Iterable[bytes], declarations: bytes) -> int:
        """Store `pieces` (serialized ExportResponse) as the service's answer; the declarations ride on
        piece 0. The number of pieces; StepFailed("LEASE_LOST") if the step was taken over meanwhile."""
        now = self.clock()  # one time for the whole answer: its pieces are purged together
        with self.uow() as uow:
            self._hold(uow, call)
            uow.repo.clear_export(call.request_id, call.service)
            uow.commit()
        count = 0
        # Every piece through one connection (its page cache, not every pooled one's, takes the pages).
        with self.uow.pinned() as pinned:
            for seq, piece in enumerate(pieces):
                with pinned() as uow:
                    self._hold(uow, call)
                    uow.repo.save_export_part(ExportPart(
                        request_id=call.request_id, service=call.service, seq=seq, export=piece,
                        declarations=b"" if seq else declarations, created_at=now))
                    uow.commit()
                count += 1
        if not count:  # the contract always sends a first piece (the note): an empty answer is a fault
            raise StepFailed("EMPTY_EXPORT")
        return count

    @staticmethod
    def _hold(uow: UnitOfWork[Repository], call: StepCall) -> None:
        step = uow.repo.step(call.request_id, call.service, call.operation, lock=True)
        if step is None or step.status != "pending" or not call.lease_id or step.lease_id != call.lease_id:
            raise StepFailed("LEASE_LOST")
