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
    # Consent is specific (sections 6.1, 7): each channel, and third-party sharing, counts on its own grant.
    consent = "third_party" if purpose == "third_party_marketing" else channel
    if not granted(prefs, consent):
        return Decision(False, "no_consent")
    granted_at, basis_seq = prefs.grant(consent)
    if basis_seq < purpose_floor:
        return Decision(False, "reconsent_required")
    # Any of the subject's addresses suppressed after this grant blocks it (the row does not say which).
    suppressed = latest(prefs.address_suppressed_at, suppressed_since)
    if suppressed is not None and (granted_at is None or suppressed >= as_utc(granted_at)):
        return Decision(False, "suppressed")
    return Decision(True, "consented")


def granted(prefs: Preferences, consent: str) -> bool:
    """Is this marketing consent (email, telephone, third_party) on?"""
    return bool({"email": prefs.marketing_email, "telephone": prefs.marketing_telephone,
                 "third_party": prefs.third_party_marketing}.get(consent, False))


def stale(prefs: Preferences, purpose_floor: int) -> list[str]:
    """The marketing consents that are on but were given before the latest purpose change."""
    return [c for c in ("email", "telephone", "third_party")
            if granted(prefs, c) and prefs.grant(c)[1] < purpose_floor]


def latest(*moments: datetime | None) -> datetime | None:
    """The latest of the given moments (UTC), or None if none is given."""
    known = [as_utc(m) for m in moments if m is not None]
    return max(known) if known else None
