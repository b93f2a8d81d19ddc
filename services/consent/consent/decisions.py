"""CanContact as one pure function: the same rule for one subject, a batch, a campaign and a send."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from servicekit.db import as_utc
from servicekit.errors import InvalidArgument

from .models import Preferences

CHANNELS = ("email", "telephone")
PURPOSES = ("marketing", "third_party_marketing", "service")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


def check_question(channel: str, purpose: str) -> None:
    if channel not in CHANNELS:
        raise InvalidArgument("channel must be email or telephone", "invalid_channel")
    if purpose not in PURPOSES:
        raise InvalidArgument(f"purpose must be one of {', '.join(PURPOSES)}", "invalid_purpose")


def decide(prefs: Preferences | None, channel: str, purpose: str, restricted: bool, purpose_floor: int,
           suppressed_since: datetime | None = None) -> Decision:
    """May this subject be contacted now? Service messages always (section 8.2); marketing only with
    a live consent: not withdrawn, not objected to, not restricted, not given before a purpose change,
    and not older than a suppression entry for the address (fresh consent beats an old suppression).

    The suppression is the later of the one recorded on the row (known without the address) and
    `suppressed_since`, which the sender finds from the address it holds at send time."""
    if prefs is None:
        return Decision(False, "unknown_subject")  # never signed up, or erased
    if purpose == "service":
        return Decision(True, "service_message")
    if prefs.objected_at is not None:
        return Decision(False, "objected")
    if restricted:
        return Decision(False, "restricted")
    if purpose == "third_party_marketing":
        granted = prefs.third_party_marketing
    else:
        granted = prefs.marketing_email if channel == "email" else prefs.marketing_telephone
    if not granted:
        return Decision(False, "no_consent")
    if prefs.basis_seq < purpose_floor:
        return Decision(False, "reconsent_required")
    suppressed = latest(prefs.address_suppressed_at, suppressed_since)
    if suppressed is not None and (
            prefs.marketing_granted_at is None or suppressed >= as_utc(prefs.marketing_granted_at)):
        return Decision(False, "suppressed")
    return Decision(True, "consented")


def latest(*moments: datetime | None) -> datetime | None:
    """The latest of the given moments (UTC), or None if none is given."""
    known = [as_utc(m) for m in moments if m is not None]
    return max(known) if known else None
