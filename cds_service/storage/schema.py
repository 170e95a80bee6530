"""The tables the service writes and the report reads, as SQLAlchemy Core metadata.

This is the shape *queries* use. The DDL that creates it lives, frozen, in `migrations.py`; a test
reflects a migrated database and compares it with this module, so the two cannot drift apart.

Why these tables: `invocation` is one row per `POST /cds-services/{id}` (errors included), `card`
is one row per card returned (card uuid → rule id, the join key for feedback), and `feedback` is
one row per reported outcome. Patient ids are never stored, only a keyed hash of them.
`jti_seen` is the JWT replay window (see `cds_service/replay.py`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)


class UtcDateTime(TypeDecorator[datetime]):
    """An instant, stored as naive UTC on every backend and read back as an aware UTC datetime.

    Why: SQLite has no time zone type and PostgreSQL's `timestamptz` answers in the session's zone;
    storing naive UTC everywhere makes the feedback uniqueness key (card, outcome, instant) compare
    the same way on both, and `--since` filters mean the same thing.
    """

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("UtcDateTime needs an aware datetime; a clinical timestamp's zone is never guessed")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


metadata = MetaData()

schema_version = Table(
    "ivig_cds_schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", String(200), nullable=False),
    Column("applied_at", UtcDateTime, nullable=False),
)

invocation = Table(
    "invocation",
    metadata,
    Column("id", String(32), primary_key=True),  # uuid4 hex, made by the writer: no round trip
    Column("received_at", UtcDateTime, nullable=False, index=True),
    Column("service_id", String(200), nullable=False),
    Column("hook", String(64)),
    Column("hook_instance", String(200)),
    Column("patient_hash", String(64)),  # HMAC-SHA256 hex of the patient id; NULL without a key
    Column("data_mode", String(16), nullable=False),  # prefetch | fetched | mixed | none
    Column("status", Integer, nullable=False),  # the HTTP status answered
    Column("latency_ms", Float, nullable=False),
    Column("request_id", String(64)),
)

card = Table(
    "card",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("invocation_id", String(32), ForeignKey("invocation.id"), nullable=False, index=True),
    Column("card_uuid", String(36), nullable=False, index=True),
    Column("rule_id", String(100), nullable=False, index=True),
    Column("indicator", String(16), nullable=False),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", UtcDateTime, nullable=False, index=True),
    Column("service_id", String(200), nullable=False),
    Column("card_uuid", String(36), nullable=False, index=True),
    Column("outcome", String(16), nullable=False),  # accepted | overridden
    Column("outcome_timestamp", UtcDateTime, nullable=False),
    Column("accepted_suggestions", Text),  # JSON list of suggestion uuids
    Column("override_reason_system", String(200)),
    Column("override_reason_code", String(100)),
    Column("override_reason_display", String(200)),
    Column("user_comment", Text),  # free text, may hold patient data: stored, never logged
    Column("known_card", Boolean, nullable=False),
    UniqueConstraint("card_uuid", "outcome", "outcome_timestamp", name="uq_feedback_card_outcome_time"),
)

#: The JWT replay window: one row per CDS client token accepted and not yet expired. The key is
#: SHA-256 of (iss, jti) as hex, so a client's strings of any length or content never reach SQL
#: as identifiers; `expires_at` is epoch seconds (the token's `exp` plus the leeway).
jti_seen = Table(
    "jti_seen",
    metadata,
    Column("token_key", String(64), primary_key=True),
    Column("expires_at", Float, nullable=False, index=True),
)
