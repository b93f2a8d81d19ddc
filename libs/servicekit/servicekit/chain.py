"""Hash-chained, append-only logs (the audit trail, the transfer log) and their check.

Each row carries `seq` (1, 2, …), `prev_hash` and `hash` = SHA-256 over the canonical JSON of
its `CHAIN_FIELDS`, its seq and its predecessor's hash. Writers append under the chain's head
row in `chain_heads`: the first statement of an append is an UPDATE of that row, which takes
its row lock on PostgreSQL and the database's write lock on SQLite, so concurrent writers queue
and the chain never forks (the unique `seq` would refuse a fork anyway). `verify` recomputes
the chain and says at which seq it first breaks: an edited row no longer matches its hash (or,
if its hash was recomputed, the next row no longer links to it); a removed row leaves a gap.
Retention removes the oldest rows (rotation.py): it first records the removed prefix's last seq
and hash as the chain's anchor (`chain_heads` row `<chain>.anchor`), and `verify` starts there.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import BigInteger, String, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from .statements import insert_now

GENESIS = "0" * 64
NONE = {"category": "none"}  # chain bookkeeping holds no personal data


class ChainHeadMixin:
    """The last seq and hash of each chain in this database; `class ChainHead(ChainHeadMixin, Base)`."""

    __tablename__ = "chain_heads"

    name: Mapped[str] = mapped_column(String(40), primary_key=True, info=NONE)
    seq: Mapped[int] = mapped_column(BigInteger, info=NONE)
    hash: Mapped[str] = mapped_column(String(64), info=NONE)


class ChainedMixin:
    """Columns every chained row has; subclasses name the chain and the fields it covers."""

    CHAIN: ClassVar[str]
    CHAIN_FIELDS: ClassVar[tuple[str, ...]]

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False, info=NONE)
    prev_hash: Mapped[str] = mapped_column(String(64), info=NONE)
    hash: Mapped[str] = mapped_column(String(64), info=NONE)


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        aware = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.isoformat(timespec="microseconds")
    return value


def digest(row: ChainedMixin) -> str:
    body = {name: _canonical(getattr(row, name)) for name in row.CHAIN_FIELDS}
    body["seq"] = row.seq
    body["prev_hash"] = row.prev_hash
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _insert(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def anchor_name(chain: str) -> str:
    return f"{chain}.anchor"


def anchor(session: Session, head: type[ChainHeadMixin], chain: str) -> tuple[int, str]:
    """The last seq and hash retention removed from `chain` ((0, GENESIS) when nothing was)."""
    found = session.execute(select(head.seq, head.hash).where(head.name == anchor_name(chain))).first()
    return (int(found[0]), str(found[1])) if found else (0, GENESIS)


@dataclass(frozen=True)
class _Statements:
    """An append's statements on one head table, built once (building one costs more than running it)."""

    touch: Any  # take the head's row, answer its (seq, hash)
    create: Any  # a chain's first head row
    advance: Any  # the new head


@functools.cache
def _statements(table: Any, dialect: str) -> _Statements:
    name = bindparam("chain_name", type_=String)
    insert_head = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return _Statements(
        touch=update(table).where(table.c.name == name).values(seq=table.c.seq)
        .returning(table.c.seq, table.c.hash),
        create=insert_head(table).values(name=name, seq=0, hash=GENESIS)
        .on_conflict_do_nothing(index_elements=["name"]),
        advance=update(table).where(table.c.name == name).values(seq=bindparam("new_seq"), hash=bindparam("new_hash")))


def _lock_head(session: Session, head: type[ChainHeadMixin], name: str) -> tuple[int, str]:
    """Take the chain's head for this transaction (writers queue here) and return (seq, hash): one
    statement (UPDATE … RETURNING), on the table, not through the ORM's unit of work (an append is the
    hottest write of a service: every audited access makes one)."""
    built = _statements(head.__table__, session.get_bind().dialect.name)  # type: ignore[attr-defined]
    found = session.execute(built.touch, {"chain_name": name}).first()
    if found is None:
        # First row of this chain: create the head (two first writers race harmlessly).
        session.execute(built.create, {"chain_name": name})
        found = session.execute(built.touch, {"chain_name": name}).one()
    return int(found[0]), str(found[1])


def append(session: Session, head: type[ChainHeadMixin], rows: Sequence[ChainedMixin]) -> None:
    """Link `rows` (all of one chain) after the chain's head, in this transaction. The rows are written
    at once, in one statement (they are not added to the session: read them back by query)."""
    if not rows:
        return
    name = rows[0].CHAIN
    seq, prev = _lock_head(session, head, name)
    for row in rows:
        seq += 1
        row.seq = seq
        row.prev_hash = prev
        row.hash = digest(row)
        prev = row.hash
    insert_now(session, rows)
    built = _statements(head.__table__, session.get_bind().dialect.name)  # type: ignore[attr-defined]
    session.execute(built.advance, {"chain_name": name, "new_seq": seq, "new_hash": prev})


@dataclass(frozen=True)
class ChainCheck:
    chain: str
    intact: bool
    checked: int
    broken_at_seq: int = 0
    problem: str = ""
    # Rows up to this seq were removed by retention; the check started after it, from its hash.
    anchor_seq: int = 0


def verify(session: Session, model: type[ChainedMixin], head: type[ChainHeadMixin],
           batch: int = 2000) -> ChainCheck:
    """Walk the chain in seq order, from its anchor, and report the first row that breaks it."""
    name = model.CHAIN
    start, prev = anchor(session, head, name)
    expected, checked = start + 1, 0
    while True:
        rows = list(session.scalars(select(model).where(model.seq >= expected).order_by(model.seq)
                                    .limit(batch)))
        for row in rows:
            if row.seq != expected:
                return ChainCheck(name, False, checked, expected, f"row {expected} is missing (a gap in the chain)",
                                  start)
            if row.prev_hash != prev:
                return ChainCheck(name, False, checked, row.seq,
                                  "does not link to the row before it (that row was changed or replaced)", start)
            if digest(row) != row.hash:
                return ChainCheck(name, False, checked, row.seq, "row content does not match its hash", start)
            prev, expected, checked = row.hash, expected + 1, checked + 1
        session.expunge_all()  # keep memory flat on a long chain
        if len(rows) < batch:
            break
    recorded = session.execute(select(head.seq, head.hash).where(head.name == name)).first()
    head_seq, head_hash = (int(recorded[0]), str(recorded[1])) if recorded else (0, GENESIS)
    if head_seq != start + checked or head_hash != prev:
        return ChainCheck(name, False, checked, start + checked + 1,
                          f"the chain head records {head_seq} rows but {start + checked} link up (rows removed at "
                          "the end)", start)
    return ChainCheck(name, True, checked, anchor_seq=start)
