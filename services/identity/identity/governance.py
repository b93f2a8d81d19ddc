"""What identity processes, why, for whom and for how long: its processing declaration, in one place.

The record of processing (`kaseum ropa`) and the retention schedule (`kaseum retention show`,
GET /api/v1/admin/retention) are built from this; the purge job applies `RETENTION`.
"""

from __future__ import annotations

from servicekit import rotation
from servicekit.declarations import Purpose, ServiceDeclaration
from servicekit.retention import RetentionRule

from .models import (
    GOVERNANCE,
    Base,
    purge_address_messages,
    purge_ended_sessions,
    purge_organisation_audit,
    purge_sign_ins,
    purge_throttles,
    purge_tokens,
)


def retention(technical_days: int = 90) -> tuple[RetentionRule, ...]:
    """The schedule; technical data's period is the deployment's TECHNICAL_RETENTION_DAYS (90 by default)."""
    return (
        RetentionRule(
            "accounts",
            "3.2.1",
            "the account: identity, contact and profile data",
            "while the account lives; a customer without a sign-in for 2 years is warned, and reported "
            "dormant 30 days later unless they sign in (identity.account.dormant: the rights service "
            "erases them everywhere)",
            "needed to run the relationship (4.1.1–4.1.3); inactivity ends the need",
            covers=("3.2.2", "3.2.4"),
        ),
        RetentionRule(
            "sign_ins",
            "3.2.3",
            "IP address, browser, operating system and time zone of each sign-in",
            "capture at sign-in",
            "protecting the business and the accounts (4.1.3)",
            days=technical_days,
            purge=purge_sign_ins,
            covers=("3.2.1",),
        ),
        RetentionRule(
            "sessions",
            "3.2.3",
            "sessions with device and last-seen time",
            "expiry or revocation of the session",
            "letting the person see and end their sessions; protecting accounts (4.1.3)",
            days=90,
            purge=purge_ended_sessions,
            covers=("3.2.1",),
        ),
        RetentionRule(
            "sign_in_throttle",
            "3.2.3",
            "failed sign-in counters per account (by its id) and under keyed hashes of other logins typed and of "
            "addresses",
            "the last failed attempt",
            "slowing password guessing (4.1.3)",
            days=90,
            purge=purge_throttles,
        ),
        RetentionRule(
            "link_tokens",
            "3.2.4",
            "e-mail verification and password-reset tokens (hashes)",
            "expiry of the token (7 days or 1 hour after it is made)",
            "proving the link was used once",
            days=30,
            purge=purge_tokens,
            covers=("3.2.1",),
        ),
        RetentionRule(
            "addresses_without_account",
            "3.2.2",
            "the address given in a sign-up whose username was taken",
            "expiry (a day after the attempt), unless the sender claimed it first",
            "telling the person to choose another username without revealing it to anyone else",
            days=0,
            purge=purge_address_messages,
        ),
        RetentionRule(
            "organisation_changes",
            "access_records",
            "who changed organisations and reseller relationships",
            "the change",
            "Limitation Act 1980 s.5 (6 years) and evidence for breach assessment; append-only: the database "
            "lets only rows older than 6 years be deleted, and the purge deletes them in batches",
            months=rotation.MONTHS,
            purge=purge_organisation_audit,
            covers=("3.2.1",),
        ),
        RetentionRule(
            "access_and_transfer_records",
            "access_records",
            "staff and services' access to identity data, transfer decisions",
            "the access or decision",
            "Limitation Act 1980 s.5 (6 years); " + rotation.HOW,
            months=rotation.MONTHS,
            purge=rotation.purge_chains(GOVERNANCE),
            covers=("transfer_records", "3.2.1"),
        ),
    )


def declaration(technical_days: int = 90) -> ServiceDeclaration:
    return ServiceDeclaration(
        service="identity",
        metadata=Base.metadata,
        purposes=(
            Purpose("4.1.1", ("3.2.1", "3.2.2", "3.2.4"), "registering a customer: sign-up, verification, sign-in"),
            Purpose("4.1.2", ("3.2.1", "3.2.2"), "managing the relationship: profile, notices, service messages"),
            Purpose(
                "4.1.3",
                ("3.2.1", "3.2.3", "3.2.4", "access_records", "transfer_records"),
                "administering and protecting the business: sessions, throttling, technical data, staff roles, "
                "organisations and reseller relationships",
            ),
        ),
        retention=retention(technical_days),
        recipients=("5.1.1", "5.1.2"),
        transfers=("hosting",),
    )


DECLARATION = declaration()
