"""Validation of the fields the notice names (sections 3.2.1, 3.2.2, 3.2.4).

Messages name the field and the rule, never the value given.
"""

from __future__ import annotations

import re
import unicodedata
import zoneinfo

import phonenumbers
import pycountry
from email_validator import EmailNotValidError, validate_email
from servicekit.errors import InvalidArgument
from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

USERNAME_RE = re.compile(r"^[\w.\-]{3,64}$")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
MAX_TEXT = 100
# The 30,000 most common passwords, shipped with zxcvbn.
COMMON_PASSWORDS = frozenset(FREQUENCY_LISTS["passwords"])
# zxcvbn's score: 3 means "safely unguessable" against an online attack with throttling.
MIN_SCORE = 3


def username(value: str) -> str:
    normalised = unicodedata.normalize("NFKC", value).strip()
    if not USERNAME_RE.fullmatch(normalised):
        raise InvalidArgument("username must be 3–64 letters, digits, '.', '-' or '_'", "invalid_username")
    return normalised


def username_key(value: str) -> str:
    """Case-insensitive uniqueness key."""
    return unicodedata.normalize("NFKC", value).casefold()


def email(value: str) -> str:
    try:
        return str(validate_email(value.strip(), check_deliverability=False).normalized)
    except EmailNotValidError as exc:
        raise InvalidArgument("email is not a valid e-mail address", "invalid_email") from exc


def email_key(value: str) -> str:
    return value.casefold()


def country(value: str) -> str:
    code = value.strip().upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise InvalidArgument("country must be an ISO 3166-1 alpha-2 code", "invalid_country")
    return code


def phone(value: str, country_code: str) -> str:
    """E.164, or "" when no phone was given."""
    if not value.strip():
        return ""
    try:
        parsed = phonenumbers.parse(value, country_code or None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidArgument("phone is not a valid telephone number", "invalid_phone") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidArgument("phone is not a valid telephone number", "invalid_phone")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def text(field: str, value: str, required: bool = True) -> str:
    cleaned = unicodedata.normalize("NFC", value).strip()
    if required and not cleaned:
        raise InvalidArgument(f"{field} is required", "missing_field")
    if len(cleaned) > MAX_TEXT:
        raise InvalidArgument(f"{field} must be at most {MAX_TEXT} characters", "too_long")
    if any(unicodedata.category(ch) == "Cc" for ch in cleaned):
        raise InvalidArgument(f"{field} must not contain control characters", "invalid_text")
    return cleaned


def password(value: str, user_inputs: tuple[str, ...] = ()) -> str:
    """At least 12 characters, not a common password, not easy to guess from the person's own details."""
    if len(value) < MIN_PASSWORD:
        raise InvalidArgument(f"password must be at least {MIN_PASSWORD} characters", "weak_password")
    if len(value) > MAX_PASSWORD:
        raise InvalidArgument("password is too long", "invalid_password")
    if value.lower() in COMMON_PASSWORDS:
        raise InvalidArgument("password is one of the most common passwords", "weak_password")
    # zxcvbn is slow on very long input; past 100 characters length alone is strength enough.
    if len(value) <= 100 and zxcvbn(value, user_inputs=[u for u in user_inputs if u])["score"] < MIN_SCORE:
        raise InvalidArgument("password is too easy to guess; try a longer passphrase", "weak_password")
    return value


def time_zone(value: str) -> str:
    """An IANA time zone name, or "" when the browser sent none."""
    value = value.strip()
    if not value:
        return ""
    if len(value) > 64 or value not in _zones():
        raise InvalidArgument("time_zone must be an IANA time zone such as Europe/London", "invalid_time_zone")
    return value


def _zones() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(zoneinfo.available_timezones())
    return _ZONES


_ZONES: frozenset[str] | None = None
