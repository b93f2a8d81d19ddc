"""Retention of the append-only, hash-chained logs (the audit trail, the transfer log): 6 years, then purged.

The logs refuse UPDATE and DELETE (append_only.py) and each row is chained to the one before it
(chain.py), so rows cannot simply be deleted. Retention removes a *prefix* of a chain instead,
oldest first, in batches: each batch, in one transaction, first records the removed prefix's last
seq and hash as the chain's anchor (`chain_heads` row `<chain>.anchor`), then deletes the rows at
or below it. `chain.verify` starts from the anchor, so it still finds any edit, removal or gap in
what remains. The triggers (`install`) let a DELETE through only for a row at or below the anchor
AND older than the retention period by the database's own clock (with a day's slack for clock
skew); every other UPDATE, DELETE or TRUNCATE is still refused.

To adopt in a service: 1. a migration calls `upgrade(op)` (and `downgrade(op)`), replacing the
plain triggers of `governance_schema.create_v1`; 2. its retention rule for these records takes
`purge=purge_chains(GOVERNANCE)` (and `months=MONTHS`). Rows about a subject or ticket under a
legal hold are kept, and so are the rows after them (a chain only loses a prefix).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, false, select, update
from sqlalchemy.orm import Session

from . import append_only, chain
from .db import as_utc
from .governance_models import GovernanceModels
from .holds import LegalHoldMixin, not_held
from .retention import Batch, Key, PurgeBatch

# Kept 6 years from the access or decision (Limitation Act 1980 s.5; evidence for breach assessment).
MONTHS = 72
TABLES = {"audit_log": "audit", "transfer_log": "transfers"}
# How a service's retention rule for these records says they go (its `reason` ends with it).
HOW = ("append-only and hash-chained: the oldest are purged in batches and the chain re-anchored at the last "
       "removed row, so its check still covers the rest; a legal hold keeps the records about its subject or "
       "ticket and those after them")


def deletable_when(dialect: str, chain_name: str, months: int = MONTHS) -> str:
    """SQL on OLD: the row is at or below its chain's anchor and older than `months` by the database's clock."""
    anchored = (f"OLD.seq <= COALESCE((SELECT seq FROM chain_heads WHERE name = "
                f"'{chain.anchor_name(chain_name)}'), 0)")
    # Never NULL: SQLite's `WHEN NOT (NULL)` would not fire the refusing trigger.
    return f"COALESCE({anchored} AND {older_than(dialect, months)}, FALSE)"


def older_than(dialect: str, months: int = MONTHS, column: str = "at") -> str:
    """SQL on OLD: `column` is more than `months` old by the database's clock (a day's slack for skew);
    for an append-only table that is not chained (`append_only.install(conn, table, older_than(...))`)."""
    if dialect == "postgresql":
        return f"OLD.{column} < now() - interval '{int(months)} months' + interval '1 day'"
    # SQLite stores the times as 'YYYY-MM-DD HH:MM:SS.ffffff' text, which compares in time order.
    return f"OLD.{column} < datetime('now', '-{int(months)} months', '+1 day')"


def install(conn: Connection, months: int = MONTHS) -> None:
    """The append-only triggers of the two logs, letting the retention purge's DELETEs through."""
    for table, chain_name in TABLES.items():
        append_only.install(conn, table, deletable_when(conn.dialect.name, chain_name, months))


def upgrade(op: Any, months: int = MONTHS) -> None:
    """Alembic: replace create_v1's plain triggers with those of `install`."""
    conn = op.get_bind()
    for table in TABLES:
        append_only.uninstall(conn, table)
    install(conn, months)


def downgrade(op: Any) -> None:
    conn = op.get_bind()
    for table in TABLES:
        append_only.uninstall(conn, table)
        append_only.install(conn, table)


def purge_prefix(session: Session, model: type[chain.ChainedMixin], head: type[chain.ChainHeadMixin],
                 cutoff: datetime, limit: int, holds: type[LegalHoldMixin] | None = None) -> int:
    """Remove up to `limit` of the chain's oldest rows, stopping at the first one not older than `cutoff`
    or about a subject (or ticket) under a legal hold: a chain loses only a prefix, so a held row keeps
    the rows after it too until the hold is released (kept longer, never lost).

    Writes the anchor first (the triggers compare with it), under the anchor row's lock, so two
    replicas purging at once queue and the anchor only moves forward.
    """
    name = chain.anchor_name(model.CHAIN)
    stmt = chain._insert(session)(head).values(name=name, seq=0, hash=chain.GENESIS)
    session.execute(stmt.on_conflict_do_nothing(index_elements=["name"]))
    session.execute(update(head).where(head.name == name).values(seq=head.seq)
                    .execution_options(synchronize_session=False))
    start, _ = chain.anchor(session, head, model.CHAIN)
    at = model.at  # type: ignore[attr-defined]
    held: ColumnElement[bool] = false()
    if holds is not None:
        held = ~not_held(holds, "subject", model.subject_id)  # type: ignore[attr-defined]
        if hasattr(model, "resource_id"):
            held = held | ~not_held(holds, "ticket", model.resource_id)
    rows = session.execute(select(model.seq, model.hash, at, held).where(model.seq > start).order_by(model.seq)
                           .limit(limit)).all()
    due = 0
    for row in rows:
        # A prefix: stop at the first row kept (later rows are at most moments younger; the next run).
        if as_utc(row[2]) >= as_utc(cutoff) or row[3]:
            break
        due += 1
    if not due:
        return 0
    last_seq, last_hash = rows[due - 1][0], rows[due - 1][1]
    session.execute(update(head).where(head.name == name).values(seq=last_seq, hash=last_hash)
                    .execution_options(synchronize_session=False))
    session.execute(delete(model).where(model.seq > start, model.seq <= last_seq)
                    .execution_options(synchronize_session=False))
    return due


def purge_chains(models: GovernanceModels) -> PurgeBatch:
    """A retention purge for the audit trail and then the transfer log: a prefix of each, in batches."""
    chains: list[type[chain.ChainedMixin]] = [models.audit, models.transfers]

    def purge(session: Session, cutoff: datetime, limit: int, after: Key | None) -> Batch:
        first = int(after[0]) if after else 0
        found = 0
        for index in range(first, len(chains)):
            found += purge_prefix(session, chains[index], models.heads, cutoff, limit - found, models.holds)
            if found >= limit:
                return Batch(found, found, (index,))  # this chain may have more: the next batch resumes it
        return Batch(found, found, (len(chains),))

    return purge
