"""What tickets processes, why, for whom and for how long: its processing declaration, in one place.

The record of processing (`kaseum ropa`) and the retention schedule (`kaseum retention show`,
GET /api/v1/admin/retention) are built from this; the purge job applies `RETENTION`.
"""

from __future__ import annotations

from servicekit import rotation
from servicekit.declarations import Purpose, ServiceDeclaration
from servicekit.retention import RetentionRule

from .models import GOVERNANCE, Base, purge_closed_tickets, purge_recipient_notices

LIMITATION = "Limitation Act 1980 s.5: a claim on a contract can be brought for 6 years"

RETENTION = (
    RetentionRule("closed_tickets", "ticket_content", "tickets, their replies, internal notes and search text",
                  "closure of the ticket", LIMITATION + "; legal holds suspend it (12.1)", months=72,
                  purge=purge_closed_tickets, covers=("3.2.1", "3.2.3", "3.2.5")),
    RetentionRule("open_tickets", "ticket_content", "tickets not closed, with their replies",
                  "while the ticket is open (then as closed_tickets)", "needed to answer the customer (4.1.2, 4.1.3)",
                  covers=("3.2.1", "3.2.3", "3.2.5")),
    RetentionRule("access_and_transfer_records", "access_records",
                  "who accessed which ticket, transfer decisions, the legal-hold projection",
                  "the access or decision", LIMITATION + " and evidence for breach assessment (Art. 33); "
                  + rotation.HOW + "; the legal-hold projection is not purged yet",
                  months=rotation.MONTHS, purge=rotation.purge_chains(GOVERNANCE),
                  covers=("transfer_records", "3.2.1")),
    RetentionRule("restrictions", "rights_requests", "the mark that a customer restricted processing",
                  "until the restriction is lifted or the customer is erased", "Art. 18; removed by the rights "
                  "service's LiftRestriction or Erase", covers=("3.2.1",)),
    RetentionRule("recipient_notices", "rights_requests",
                  "notices telling reseller organisations that a customer whose tickets they saw had their data "
                  "erased, rectified or restricted (ids only)", "creation of the notice",
                  "evidence that recipients were told (UK GDPR Art. 5(2), 19), kept as long as the rights "
                  "request's own records; kept through the customer's erasure, like the access log; legal holds "
                  "on the customer suspend it (12.1)", months=72, purge=purge_recipient_notices, covers=("3.2.1",)),
    RetentionRule("outbox_events", "3.2.1", "events not yet published (ids only)",
                  "until published (seconds); the event stream keeps them 30 days",
                  "delivery to the other services; the relay deletes each row once published", days=30),
)

DECLARATION = ServiceDeclaration(
    service="tickets",
    metadata=Base.metadata,
    purposes=(
        Purpose("4.1.3", ("ticket_content", "3.2.1", "3.2.3", "3.2.5", "access_records", "transfer_records",
                          "rights_requests"),
                "support: customers' tickets answered by agents (and resellers, 5.1.1), with every staff "
                "access recorded, and resellers told of a customer's erasure, rectification or restriction "
                "(Art. 19)"),
        Purpose("4.1.2", ("ticket_content", "3.2.1"), "telling customers about their tickets"),
    ),
    retention=RETENTION,
    recipients=("5.1.1", "5.1.2"),
    transfers=("reseller_access", "hosting"),
)
