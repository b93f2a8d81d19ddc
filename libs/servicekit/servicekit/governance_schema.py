"""Alembic operations that create the governance tables (version 1), shared by every service.

Spelled out here (not generated from the mixins) so that a revision keeps creating what it
created when it was written; a later change to a mixin gets a `create_v2`/`upgrade_v1_to_v2`.
`audit_log` and `transfer_log` are append-only: triggers refuse UPDATE and DELETE.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from . import append_only

APPEND_ONLY = ("audit_log", "transfer_log")


def _chained() -> list[sa.Column[Any]]:
    return [sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
            sa.Column("prev_hash", sa.String(64), nullable=False),
            sa.Column("hash", sa.String(64), nullable=False)]


def create_v1(op: Any, holds: bool = True) -> None:
    """`holds=False` when the service owns an extended legal_holds table (rights)."""
    op.create_table("chain_heads",
                    sa.Column("name", sa.String(40), nullable=False),
                    sa.Column("seq", sa.BigInteger(), nullable=False),
                    sa.Column("hash", sa.String(64), nullable=False),
                    sa.PrimaryKeyConstraint("name"))
    op.create_table("audit_log",
                    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
                    sa.Column("actor_kind", sa.String(10), nullable=False),
                    sa.Column("actor_id", sa.String(64), nullable=False),
                    sa.Column("actor_role", sa.String(20), nullable=False),
                    sa.Column("actor_organisation_id", sa.String(32), nullable=False),
                    sa.Column("subject_id", sa.String(32), nullable=False),
                    sa.Column("action", sa.String(40), nullable=False),
                    sa.Column("resource_id", sa.String(64), nullable=False),
                    sa.Column("purpose", sa.String(20), nullable=False),
                    *_chained(),
                    sa.PrimaryKeyConstraint("seq"))
    op.create_index("ix_audit_log_subject_at", "audit_log", ["subject_id", "at"])
    op.create_index("ix_audit_log_actor_at", "audit_log", ["actor_id", "at"])
    op.create_index("ix_audit_log_org_at", "audit_log", ["actor_organisation_id", "at"])
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_table("transfer_log",
                    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
                    sa.Column("kind", sa.String(20), nullable=False),
                    sa.Column("destination_country", sa.String(2), nullable=False),
                    sa.Column("recipient", sa.String(200), nullable=False),
                    sa.Column("categories", sa.String(200), nullable=False),
                    sa.Column("subject_id", sa.String(32), nullable=False),
                    sa.Column("allowed", sa.Boolean(), nullable=False),
                    sa.Column("basis", sa.String(20), nullable=False),
                    sa.Column("safeguard_reference", sa.String(200), nullable=False),
                    sa.Column("reason", sa.Text(), nullable=False),
                    sa.Column("actor_id", sa.String(64), nullable=False),
                    *_chained(),
                    sa.PrimaryKeyConstraint("seq"))
    op.create_index("ix_transfer_log_at", "transfer_log", ["at"])
    op.create_table("purge_runs",
                    sa.Column("id", sa.String(32), nullable=False),
                    sa.Column("rule", sa.String(60), nullable=False),
                    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
                    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
                    sa.Column("cutoff", sa.DateTime(timezone=True), nullable=False),
                    sa.Column("purged", sa.BigInteger(), nullable=False),
                    sa.Column("batches", sa.BigInteger(), nullable=False),
                    sa.PrimaryKeyConstraint("id"))
    op.create_index("ix_purge_runs_started_at", "purge_runs", ["started_at"])
    if holds:
        op.create_table("legal_holds", *hold_columns(), sa.PrimaryKeyConstraint("hold_id"))
        op.create_index("ix_legal_holds_target", "legal_holds", ["target_id", "scope"])
    for table in APPEND_ONLY:
        append_only.install(op.get_bind(), table)


def hold_columns() -> list[sa.Column[Any]]:
    return [sa.Column("hold_id", sa.String(32), nullable=False),
            sa.Column("scope", sa.String(10), nullable=False),
            sa.Column("target_id", sa.String(32), nullable=False),
            sa.Column("reason_code", sa.String(30), nullable=False),
            sa.Column("review_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("released_at", sa.DateTime(timezone=True), nullable=True)]


def drop_v1(op: Any, holds: bool = True) -> None:
    for table in APPEND_ONLY:
        append_only.uninstall(op.get_bind(), table)
    tables = ["purge_runs", "transfer_log", "audit_log", "chain_heads"] + (["legal_holds"] if holds else [])
    for table in tables:
        op.drop_table(table)
