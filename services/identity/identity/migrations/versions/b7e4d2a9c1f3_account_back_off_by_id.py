"""an account's sign-in back-off keyed by its id

Revision ID: b7e4d2a9c1f3
Revises: f3b8c2d41a6e
Create Date: 2026-12-02 03:40:00.000000
"""

from collections.abc import Sequence

from alembic import op


revision: str = 'b7e4d2a9c1f3'
down_revision: str | None = 'f3b8c2d41a6e'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Accounts and logins that name none were both kept under 'login:' + a keyed hash; an account's back-off is
    # now 'login:account:' + its id. The old rows cannot be told apart or re-keyed here (the key is a secret a
    # migration does not hold), so they go: none then outlives its account's erasure. Counting starts again.
    op.execute("DELETE FROM login_throttle WHERE key LIKE 'login:%' AND key NOT LIKE 'login:account:%'")


def downgrade() -> None:
    op.execute("DELETE FROM login_throttle WHERE key LIKE 'login:account:%'")
