"""rsvps and unsubscribes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

What the user did with rich messages: answers to calendar invitations (``rsvps``,
app/invites.py) and unsubscribes from mailing lists (``unsubscribes``,
app/unsubscribe.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "rsvps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("uid", sa.Text(), nullable=False),
        sa.Column("recurrence_id", sa.Text(), nullable=True),
        sa.Column("sequence", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("partstat", sa.String(length=16), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_rsvps_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_rsvps_message_id_messages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["outbox.id"],
            name=op.f("fk_rsvps_outbox_id_outbox"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rsvps")),
    )
    with op.batch_alter_table("rsvps", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rsvps_account_id_uid"), ["account_id", "uid"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_rsvps_message_id"), ["message_id"], unique=False)

    op.create_table(
        "unsubscribes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("list_id", sa.Text(), nullable=True),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_unsubscribes_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_unsubscribes_message_id_messages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["outbox.id"],
            name=op.f("fk_unsubscribes_outbox_id_outbox"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unsubscribes")),
    )
    with op.batch_alter_table("unsubscribes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_unsubscribes_account_id_list_id"),
            ["account_id", "list_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_unsubscribes_message_id"), ["message_id"], unique=False
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("unsubscribes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_unsubscribes_message_id"))
        batch_op.drop_index(batch_op.f("ix_unsubscribes_account_id_list_id"))
    op.drop_table("unsubscribes")
    with op.batch_alter_table("rsvps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rsvps_message_id"))
        batch_op.drop_index(batch_op.f("ix_rsvps_account_id_uid"))
    op.drop_table("rsvps")
