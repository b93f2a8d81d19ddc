"""What analytics processes, why, for whom and for how long: its processing declaration, in one place.

The record of processing (`kaseum ropa`) and the retention schedule (`kaseum retention show`,
GET /api/v1/admin/retention) are built from this; the purge job applies the rules that have a purge
function. Usage events and excluded pseudonyms have none on purpose: the roll-up job is their purge
(it counts a finished day, then deletes the day's events in the same transaction); a second delete
by the purge job could remove a day before it is counted. Their rules are here so the schedule
shows them.
"""

from __future__ import annotations

from servicekit import rotation
from servicekit.declarations import Purpose, ServiceDeclaration
from servicekit.retention import RetentionRule

from .models import GOVERNANCE, Base, purge_noisy_answers, purge_privacy_spend

LIMITATION = "Limitation Act 1980 s.5 (6 years)"
NOISY_ANSWER_DAYS = 1
# A budget period is a calendar month; its row is kept through the following month, so the DPO
# can still check last month's spending, then purged (the current month's row is never due).
PRIVACY_SPEND_MONTHS = 2


def _grace(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours:g} h" if hours >= 1 else f"{seconds / 60:g} min"


def retention(rollup_grace_seconds: float = 3600.0) -> tuple[RetentionRule, ...]:
    """The schedule; the roll-up grace is the deployment's ROLLUP_GRACE_SECONDS (1 hour by default)."""
    rollup = (f"the event, until the end of its UTC day + {_grace(rollup_grace_seconds)} (the roll-up grace, for "
              "late events): the roll-up job then counts the day and deletes its events in the same transaction")
    return (
        RetentionRule(
            "usage_events", "3.2.5", "uses of named features under the day's pseudonym (keyed hash, key "
            "destroyed after the roll-up), with region and coarse product and organisation-size values",
            rollup, "only to count distinct users per day (4.1.4); deleted by the roll-up, not by the purge job "
            "(deleting before counting would lose the day); not subject to legal holds: a hold names a "
            "subject, and a pseudonym can be tied to one only while its day's key lives"),
        RetentionRule(
            "excluded_pseudonyms", "3.2.5", "pseudonyms of the day whose subject objected or is restricted",
            rollup, "refusing events still in flight for those subjects (13.1.4, 13.1.5); deleted with the "
            "day's events by the roll-up"),
        RetentionRule(
            "aggregates", "none", "distinct users per day, region, feature and coarse dimension, and the cells "
            "released to analysts (suppressed below the minimum group size)",
            "the roll-up of the day; kept without limit",
            "not personal data (no one can be identified from them, directly or indirectly: 3.3); kept for "
            "year-on-year comparison"),
        RetentionRule(
            "noisy_answers", "3.2.5", "differentially private answers as released, under a keyed hash of the "
            "analyst's account and the request id", "the answer",
            "a retried request gets the same answer and is not charged twice; retries come within seconds",
            days=NOISY_ANSWER_DAYS, purge=purge_noisy_answers, covers=("3.2.1",)),
        RetentionRule(
            "privacy_spend", "3.2.5", "epsilon each analyst (keyed hash of the account id) spent per month",
            "the start of the budget month", "enforcing the monthly privacy budget, then one month more so the "
            "DPO can check the last month's spending", months=PRIVACY_SPEND_MONTHS, purge=purge_privacy_spend,
            covers=("3.2.1",)),
        RetentionRule(
            "access_and_transfer_records", "access_records", "transfer decisions (hosting); staff access "
            "records (none expected: analysts read aggregates only)", "the access or decision",
            f"{LIMITATION} and evidence for breach assessment (Art. 33); {rotation.HOW}", months=rotation.MONTHS,
            purge=rotation.purge_chains(GOVERNANCE), covers=("transfer_records", "3.2.1")),
        RetentionRule(
            "outbox_events", "3.2.1", "events not yet published (analytics publishes none: the table stays "
            "empty)", "until published", "delivery to the other services; the relay deletes each row once "
            "published", days=30),
    )


def declaration(rollup_grace_seconds: float = 3600.0) -> ServiceDeclaration:
    return ServiceDeclaration(
        service="analytics",
        metadata=Base.metadata,
        purposes=(
            Purpose("4.1.4", ("3.2.5", "3.2.1"),
                    "feature-usage statistics: uses of named features by signed-in customers, held under a "
                    "daily pseudonym until the day is counted, then only counts that identify no one; "
                    "analysts' differential-privacy budget, named by a keyed hash"),
            Purpose("4.1.3", ("access_records", "transfer_records", "3.2.1"),
                    "records of transfer decisions (hosting) and of staff access"),
        ),
        retention=retention(rollup_grace_seconds),
        recipients=("5.1.2",),
        transfers=("hosting",),
    )


DECLARATION = declaration()
