"""What consent needs from rights at send time: the one-time code of a request the DPO filed on a
subject's behalf (notice 13.2), as an interface the sender can be given.

The gRPC implementation is rights_client.py; a unit test of one rule may pass a fake.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class ClaimedCode:
    subject_id: str
    code: str
    expires_at: datetime


class CodeGone(Exception):
    """The code was already claimed (by an earlier attempt that did not record it) or the request is unknown."""


class CodesUnavailable(Exception):
    """Rights cannot answer now: try the message again later."""


class VerificationCodes(Protocol):
    def claim_code(self, request_id: str) -> ClaimedCode:
        """The request's one-time code; given out once (CodeGone after)."""
