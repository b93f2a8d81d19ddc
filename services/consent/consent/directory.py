"""What consent needs from identity at send time, as an interface the rules can be given.

The gRPC implementation is identity_client.py; a unit test of one rule may pass a fake.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Contact:
    email: str
    phone: str
    restricted: bool


@dataclass(frozen=True)
class ClaimedToken:
    token: str
    purpose: str
    # For a message to someone without an account (signup_username_taken): the address to write to.
    email: str


class TokenGone(Exception):
    """The token was already claimed (by an earlier attempt that did not record it) or is unknown."""


class DirectoryUnavailable(Exception):
    """Identity cannot answer now: try the message again later."""


class Directory(Protocol):
    def contact(self, subject_id: str) -> Contact | None:
        """The subject's addresses now, or None when there is no such account (erased)."""

    def contacts(self, subject_ids: Sequence[str]) -> list[Contact | DirectoryUnavailable | None]:
        """`contact` of each subject, in order, read at once: what `contact` would raise for one stands
        in its place; raises DirectoryUnavailable when identity cannot answer at all."""

    def claim_token(self, token_id: str) -> ClaimedToken:
        """The one-time link token; works once (TokenGone after)."""
