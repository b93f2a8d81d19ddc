"""Signed, expiring unsubscribe tokens (RFC 8058 links): who, which channel, until when; nothing else.

Format: base64url(JSON payload) "." base64url(HMAC-SHA256). Compact enough for a URL, verifiable
by consent alone (the key never leaves it), and carrying no personal data but an opaque id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime

from servicekit.errors import DomainError, InvalidArgument


class TokenExpired(DomainError):
    code = "token_expired"


@dataclass(frozen=True)
class UnsubscribeClaim:
    subject_id: str
    channel: str
    message_id: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue(key: bytes, claim: UnsubscribeClaim, expires: datetime) -> str:
    payload = _b64(json.dumps({"s": claim.subject_id, "c": claim.channel, "m": claim.message_id,
                               "e": int(expires.timestamp())}, separators=(",", ":")).encode())
    mac = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{mac}"


def verify(key: bytes, token: str, now: datetime) -> UnsubscribeClaim:
    """The claim of a genuine, unexpired token; InvalidArgument for a forged one, TokenExpired after expiry."""
    payload, _, mac = token.strip().partition(".")
    try:
        good = hmac.compare_digest(_unb64(mac), hmac.new(key, payload.encode(), hashlib.sha256).digest())
        data = json.loads(_unb64(payload)) if good else None
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict) or not {"s", "c", "m", "e"} <= data.keys():
        raise InvalidArgument("this unsubscribe link is not valid", "invalid_token")
    if int(data["e"]) <= int(now.timestamp()):
        raise TokenExpired("this unsubscribe link has expired; change your choices on the preference page")
    return UnsubscribeClaim(str(data["s"]), str(data["c"]), str(data["m"]))
