"""Plain statements for hot paths: SQLAlchemy Core on a mapped class's table, built once.

On SQLite, building a statement and its cache key costs more than running it, and the ORM's unit of
work several times the statement; the paths every request or erasure takes (the audit chain, the
outbox, the inbox, filing, Erase) write this way. Everything else keeps the ORM.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session


def core_table(model: type[Any]) -> Table:
    """A mapped class's table, for plain Core statements built once on a hot path: building a statement
    costs more than running it on SQLite, and the ORM's unit of work more again."""
    return cast(Table, model.__table__)  # declared on every mapped class


def insert_now(session: Session, rows: Sequence[Any]) -> None:
    """Insert `rows` (new objects of one mapped class, every column set) by one statement, at once, in the
    session's transaction: not through the unit of work, which costs several times the statement on a
    hot path. The objects stay outside the session: read them back by query to change them later."""
    if not rows:
        return
    table = core_table(type(rows[0]))
    values = []
    for row in rows:
        value = {}
        for column in table.columns:
            given = getattr(row, column.key)
            if given is None and column.default is not None and column.default.is_scalar:
                # What the unit of work would have filled in, on the object too (it stays readable).
                given = column.default.arg  # type: ignore[attr-defined]
                setattr(row, column.key, given)
            if given is not None or (column.default is None and column.server_default is None):
                value[column.key] = given
        values.append(value)
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for value in values:  # rows leaving different columns to the database's defaults go separately
        shapes.setdefault(tuple(value), []).append(value)
    for same in shapes.values():
        insert_values(session, table, same)


@functools.cache
def _insert_of(table: Table) -> Any:
    return insert(table)


def insert_values(session: Session, table: Table, values: list[dict[str, Any]]) -> None:
    """INSERT `values` (dicts of column values) into `table` by its statement built once."""
    session.execute(_insert_of(table), values)
