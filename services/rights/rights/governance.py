"""What rights processes, why, for whom and for how long: its processing declaration, in one place."""

from __future__ import annotations

from servicekit import rotation
from servicekit.declarations import Purpose, ServiceDeclaration
from servicekit.retention import RetentionRule

from .models import GOVERNANCE, Base, purge_completed_requests, purge_expired_exports, purge_released_holds

LIMITATION = "Limitation Act 1980 s.5 (6 years)"

RETENTION = (
    RetentionRule("completed_requests", "rights_requests", "rights requests and the evidence of how they were "
                  "handled", "completion (or refusal) of the request",
                  f"evidence of compliance (UK GDPR Art. 5(2), 12); {LIMITATION}; legal holds suspend it",
                  months=72, purge=purge_completed_requests, covers=("3.2.1",)),
    RetentionRule("open_requests", "rights_requests", "requests not yet completed", "while the request is open "
                  "(then as completed_requests)", "needed to answer the request within its deadline",
                  covers=("3.2.1",)),
    RetentionRule("released_holds", "legal_holds", "legal holds and the DPO's notes", "release of the hold",
                  f"record of why data was kept beyond its period; {LIMITATION}", months=72,
                  purge=purge_released_holds, covers=("3.2.1",)),
    RetentionRule("access_and_transfer_records", "access_records",
                  "the DPO's reads of requests, every hold change, transfer decisions", "the access or decision",
                  f"{LIMITATION} and evidence for breach assessment (Art. 33); {rotation.HOW}",
                  months=rotation.MONTHS, purge=rotation.purge_chains(GOVERNANCE),
                  covers=("transfer_records", "3.2.1")),
    RetentionRule("access_exports", "rights_requests", "the copy of a subject's data built for an access or "
                  "portability request", "the export is built (its download link is valid 7 days)",
                  "only to let the requester download it (notice 13.1.1); deleted when the link expires", days=7,
                  purge=purge_expired_exports, covers=("3.2.1", "3.2.2", "3.2.3", "3.2.4", "3.2.5", "3.2.6",
                                                       "ticket_content", "access_records")),
    RetentionRule("erasure_ledger", "3.2.1", "ids of erased subjects (nothing else)", "the erasure",
                  "replayed after a database restore so a backup taken before an erasure cannot bring the subject "
                  "back (R-ERASE-*); kept while such backups exist"),
    RetentionRule("outbox_events", "3.2.1", "events not yet published (ids only)",
                  "until published (seconds); the event stream keeps them 30 days",
                  "delivery to the other services; the relay deletes each row once published", days=30),
)

DECLARATION = ServiceDeclaration(
    service="rights",
    metadata=Base.metadata,
    purposes=(
        Purpose("4.1.2", ("rights_requests", "3.2.1"), "handling the subject's rights requests (section 13)"),
        Purpose("4.1.3", ("legal_holds", "access_records", "transfer_records", "rights_requests", "3.2.1"),
                "legal holds for complaints and litigation (12.1); records of staff access and of transfers"),
    ),
    retention=RETENTION,
    recipients=("5.1.2",),
    transfers=("portability", "hosting"),
)
