"""What consent processes, why, for whom and for how long: its processing declaration, in one place.

The record of processing (`kaseum ropa`) and the retention schedule (`kaseum retention show`,
GET /api/v1/admin/retention) are built from this; the purge job applies `RETENTION`.

Preferences and the consent ledger live as long as the account (R-RET-1). Erase (the account
closed, or dormant and erased by the rights service) drops them and keeps only the hashed
suppression entry, as issue 6 asks. Where a legal hold suspends that erasure, the ledger outlives
the account as evidence that consent was given (Art. 7(1)); that is the 6-year rule below, from the
closure of an account that was closed but not erased.
"""

from __future__ import annotations

from servicekit import rotation
from servicekit.declarations import Purpose, ServiceDeclaration
from servicekit.retention import RetentionRule

from .models import GOVERNANCE, Base, purge_campaigns, purge_communications

LIMITATION = "Limitation Act 1980 s.5: a claim on a contract can be brought for 6 years"

RETENTION = (
    RetentionRule("preferences_and_consent_ledger", "3.2.6",
                  "marketing and cookie choices and the consent ledger (when, how, under which notice)",
                  "while the account lives; its erasure (account closed, or dormant) removes them and keeps "
                  "only the suppression entry",
                  "proof of consent for as long as marketing may rely on it (PECR reg. 22, Art. 7(1)); "
                  "removed by the rights service's Erase", covers=("3.2.1",)),
    RetentionRule("consent_ledger_after_closure", "3.2.6",
                  "the consent ledger of an account closed but not erased (its erasure suspended by a legal hold)",
                  "closure of the account", LIMITATION + "; evidence that consent was given (Art. 7(1)); the "
                  "hold keeps it (12.1) and Erase removes it once the hold is released", months=72,
                  covers=("3.2.1",)),
    RetentionRule("communications", "3.2.6",
                  "messages queued and sent (kind, purpose, state, when, and for a rights request its kind "
                  "and due date; no address, no text)",
                  "queuing of the message (it is sent or given up within hours)",
                  "answering questions about what was sent and proving opt-outs were honoured; legal holds "
                  "suspend it (12.1)", months=24, purge=purge_communications, covers=("3.2.1", "3.2.4")),
    RetentionRule("campaigns", "3.2.1", "campaigns and update notices: content, figures and the admin who sent them",
                  "sending of the campaign (kept while a held subject's message refers to it)",
                  "what each message said, for as long as the messages are kept", months=24,
                  purge=purge_campaigns),
    RetentionRule("suppression_list", "3.2.2",
                  "keyed hashes of the addresses of people who objected to marketing or were erased",
                  "kept indefinitely", "it exists so that marketing never resumes after an objection or "
                  "erasure (Art. 21(3), PECR): deleting it would let a re-import market to them again; it "
                  "holds no address, only a keyed hash", covers=("3.2.6",)),
    RetentionRule("product_holdings", "3.2.5", "which products a customer holds",
                  "while the account lives; removed by Erase",
                  "telling customers about updates to their products as service messages (4.1.5)",
                  covers=("3.2.1",)),
    RetentionRule("restrictions", "rights_requests", "the mark that a customer restricted processing",
                  "until the restriction is lifted or the customer is erased", "Art. 18; removed by the rights "
                  "service's LiftRestriction or Erase", covers=("3.2.1",)),
    RetentionRule("access_and_transfer_records", "access_records",
                  "staff and services' access to consent data, transfer decisions, the legal-hold projection",
                  "the access or decision", LIMITATION + " and evidence for breach assessment (Art. 33); "
                  + rotation.HOW + "; the legal-hold projection is not purged yet",
                  months=rotation.MONTHS, purge=rotation.purge_chains(GOVERNANCE),
                  covers=("transfer_records", "3.2.1")),
    RetentionRule("outbox_events", "3.2.1", "events not yet published (ids only)",
                  "until published (seconds); the event stream keeps them 30 days",
                  "delivery to the other services; the relay deletes each row once published", days=30),
)

DECLARATION = ServiceDeclaration(
    service="consent",
    metadata=Base.metadata,
    purposes=(
        Purpose("4.1.2", ("3.2.1", "3.2.4", "3.2.6"),
                "service communications (8.2): notice and terms changes, ticket updates, account and security "
                "messages, sent whatever the marketing choices"),
        Purpose("4.1.5", ("3.2.1", "3.2.2", "3.2.5", "3.2.6"),
                "marketing by e-mail and telephone with consent (6), third-party marketing only with express "
                "consent (7), opt-out by every route and the suppression list (8), cookie choices (9), and "
                "update notices to customers of a product"),
        Purpose("4.1.3", ("3.2.1", "access_records", "transfer_records", "rights_requests"),
                "protecting the business: every staff and service access to consent data recorded, "
                "restrictions applied"),
    ),
    retention=RETENTION,
    recipients=("5.1.2",),
    transfers=("hosting",),
)
