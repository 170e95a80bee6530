"""Numbered schema migrations, applied by the program at start, in one transaction, under a lock.

Why not Alembic: the schema is three tables owned by one program. Alembic would bring two more
runtime dependencies (alembic, Mako), a script directory and an `env.py` to load at every start
(every test builds an app, so that cost is paid hundreds of times), for features we do not use
(autogenerate, branches, downgrades in production). What we keep from it is the discipline:

- each migration is a numbered, frozen function of a Connection (never edit one that has shipped:
  add the next number), written in SQLAlchemy Core so it runs on SQLite and PostgreSQL alike;
- `ivig_cds_schema_version` records every applied number, with its description and time;
- all pending migrations run in **one transaction** (both backends have transactional DDL: SQLite
  through the explicit `BEGIN IMMEDIATE` that `storage` emits), so a failure leaves the previous
  version intact;
- concurrent starts (several replicas, several workers) are serialised: on PostgreSQL by a
  transaction-scoped advisory lock, on SQLite by the write lock `BEGIN IMMEDIATE` takes.

Moving to Alembic later stays easy: its first revision would be "stamp at version N".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    inspect,
    select,
    text,
)

from cds_service.storage.schema import schema_version

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key: "ivigcds1" read as a 64-bit integer, so it collides with nobody else's.
ADVISORY_LOCK_KEY = int.from_bytes(b"ivigcds1", "big") & 0x7FFF_FFFF_FFFF_FFFF


@dataclass(frozen=True)
class Migration:
    number: int
    description: str
    apply: Callable[[Connection], None]


def _m001_initial(conn: Connection) -> None:
    """Invocations, their cards and feedback, as first shipped (frozen: do not edit)."""
    md = MetaData()
    Table(
        "invocation",
        md,
        Column("id", String(32), primary_key=True),
        Column("received_at", DateTime(timezone=False), nullable=False, index=True),
        Column("service_id", String(200), nullable=False),
        Column("hook", String(64)),
        Column("hook_instance", String(200)),
        Column("patient_hash", String(64)),
        Column("data_mode", String(16), nullable=False),
        Column("status", Integer, nullable=False),
        Column("latency_ms", Float, nullable=False),
        Column("request_id", String(64)),
    )
    Table(
        "card",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("invocation_id", String(32), ForeignKey("invocation.id"), nullable=False, index=True),
        Column("card_uuid", String(36), nullable=False, index=True),
        Column("rule_id", String(100), nullable=False, index=True),
        Column("indicator", String(16), nullable=False),
    )
    Table(
        "feedback",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("received_at", DateTime(timezone=False), nullable=False, index=True),
        Column("service_id", String(200), nullable=False),
        Column("card_uuid", String(36), nullable=False, index=True),
        Column("outcome", String(16), nullable=False),
        Column("outcome_timestamp", DateTime(timezone=False), nullable=False),
        Column("accepted_suggestions", Text),
        Column("override_reason_system", String(200)),
        Column("override_reason_code", String(100)),
        Column("override_reason_display", String(200)),
        Column("user_comment", Text),
        Column("known_card", Boolean, nullable=False),
        UniqueConstraint("card_uuid", "outcome", "outcome_timestamp", name="uq_feedback_card_outcome_time"),
    )
    md.create_all(conn)


def _m002_replay_window(conn: Connection) -> None:
    """The CDS client JWTs seen and not yet expired, shared by every worker and replica (frozen)."""
    md = MetaData()
    Table(
        "jti_seen",
        md,
        Column("token_key", String(64), primary_key=True),
        Column("expires_at", Float, nullable=False, index=True),
    )
    md.create_all(conn)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "invocations, cards and feedback", _m001_initial),
    Migration(2, "jti replay window", _m002_replay_window),
)
LATEST = MIGRATIONS[-1].number


def current_version(conn: Connection) -> int:
    """The highest applied migration, 0 for an empty database."""
    if not inspect(conn).has_table(schema_version.name):
        return 0
    return int(conn.execute(select(func.max(schema_version.c.version))).scalar() or 0)


def upgrade(engine: Engine) -> int:
    """Apply every pending migration in one transaction; return the version the database is at.

    The engine must open write transactions (`BEGIN IMMEDIATE` on SQLite) when asked with the
    execution option `ivig_write=True`; `storage.Storage` sets that up.
    """
    with engine.connect() as conn:
        conn = conn.execution_options(ivig_write=True)
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
            schema_version.create(conn, checkfirst=True)
            version = current_version(conn)
            if version > LATEST:
                log.warning(
                    "the database schema is newer than this program; running on it unchanged",
                    extra={"reason": f"database at version {version}, program knows {LATEST}"},
                )
                return version
            for migration in MIGRATIONS:
                if migration.number <= version:
                    continue
                migration.apply(conn)
                conn.execute(
                    schema_version.insert().values(
                        version=migration.number,
                        description=migration.description,
                        applied_at=datetime.now(UTC),
                    )
                )
                log.info("database migrated", extra={"reason": f"version {migration.number}: {migration.description}"})
                version = migration.number
            return version
