"""The suppression list's keyed hashes: the minimum kept to never market again to an address (R-MKT-6)."""

from __future__ import annotations

import hashlib
import hmac


def normalise_email(address: str) -> str:
    return address.strip().lower()


def normalise_phone(number: str) -> str:
    return "".join(c for c in number if c.isdigit() or c == "+")


def address_hashes(key: bytes, email: str, phone: str) -> list[tuple[str, str]]:
    """(kind, HMAC-SHA256 hex) of each address present; the same address always gives the same hash."""
    found = []
    if email.strip():
        found.append(("email", hmac.new(key, b"email:" + normalise_email(email).encode(), hashlib.sha256).hexdigest()))
    if normalise_phone(phone):
        found.append(("phone", hmac.new(key, b"phone:" + normalise_phone(phone).encode(), hashlib.sha256).hexdigest()))
    return found
