"""The database the feedback and the audit trail live in: SQLite on one node, PostgreSQL at scale.

One setting, `IVIG_CDS_DATABASE_URL` (an SQLAlchemy URL), chooses the backend:

- **SQLite** (default `sqlite:///ivig-cds.db`, a file in the working directory; the Docker image
  sets `IVIG_CDS_DATABASE_URL=sqlite:////data/ivig-cds.db`, its one writable volume). WAL journal
  so readers never block the writer, `synchronous=FULL` so a committed feedback row survives a
  power cut, not only a process crash, and a busy timeout so concurrent workers wait for the
  write lock instead of failing. No connection pool (`NullPool`): a connection lives for one
  unit of work, which is cheap for a file, cannot leak across `fork()` (gunicorn builds the app
  before forking its workers) and leaves no handle open for a test to trip on. The JWT replay
  window, one tiny write per call, uses a pooled `hot` twin instead (see `Storage.__init__`).
- **PostgreSQL** (`postgresql+psycopg://user@host/db`; `postgresql://` is read as psycopg 3) when
  several replicas share the data. Pooled, pre-pinged, and the pool is discarded in a forked child.

SQLAlchemy Core only: the service writes rows and the report aggregates them; there are no objects
to map. Statement parameters are hidden from SQLAlchemy's error messages (`hide_parameters`), since
they carry free-text comments that may name a patient.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool, QueuePool

from cds_service.config import ConfigError, Settings
from cds_service.storage import migrations

log = logging.getLogger(__name__)


def _enter_wal(cursor: sqlite3.Cursor, deadline: float) -> None:
    """Switch the file to WAL once, waiting out concurrent first starts.

    WAL is a property of the file, so after the first connection has set it the others only read
    it. Setting it needs an exclusive lock, and SQLite answers a contended `journal_mode` change
    with "database is locked" at once, without calling the busy handler: several workers opening a
    fresh file together would crash at start. So the change is retried with a short backoff until
    the connection timeout.
    """
    delay = 0.005
    while True:
        if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
            return
        try:
            cursor.execute("PRAGMA journal_mode=WAL").fetchone()
            return  # WAL, or a file system SQLite keeps in rollback mode: it still works, only slower
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def normalise_url(raw: str) -> URL:
    """Parse a database URL, pin PostgreSQL to psycopg 3, and refuse what cannot work."""
    try:
        url = make_url(raw)
    except Exception:  # SQLAlchemy raises several types for a bad URL
        raise ConfigError("IVIG_CDS_DATABASE_URL is not a valid SQLAlchemy URL") from None
    backend, _, driver = url.drivername.partition("+")  # without loading a dialect that may be absent
    if backend in ("postgresql", "postgres"):
        if driver != "psycopg":
            url = url.set(drivername="postgresql+psycopg")  # psycopg 3: the driver this package installs
        return url
    if backend == "sqlite":
        if url.database in (None, "", ":memory:") or (url.database or "").startswith("file::memory:"):
            raise ConfigError(
                "IVIG_CDS_DATABASE_URL: an in-memory SQLite database is not shared between the request "
                "threads and the audit writer; give a file path, e.g. sqlite:///ivig-cds.db"
            )
        return url
    raise ConfigError("IVIG_CDS_DATABASE_URL must be a sqlite:/// or postgresql+psycopg:// URL")


def describe_url(url: URL) -> str:
    """The URL for logs and messages: backend, host and database, never the password."""
    return url.render_as_string(hide_password=True)


def describe_location(url: URL) -> str:
    """Which database, for people: an SQLite file by its absolute path, a server's URL without password."""
    file = sqlite_file(url)
    return f"sqlite:///{file.resolve()}" if file is not None else describe_url(url)


def sqlite_file(url: URL) -> Path | None:
    """The file an SQLite URL names (None for other backends, a URL naming no file, or a `file:` URI)."""
    if url.get_backend_name() == "sqlite" and url.database and not url.database.startswith("file:"):
        return Path(url.database).expanduser()
    return None


#: Words for the connection failures an operator meets, matched in the driver's message, which
#: itself is never logged (a constraint violation's message can quote a stored value).
_CONNECTION_FAILURES = (
    ("connection refused", "connection-refused"),
    ("timeout expired", "timeout"),
    ("timed out", "timeout"),
    ("password authentication failed", "authentication-failed"),
    ("no password supplied", "authentication-failed"),
    ("does not exist", "database-or-role-does-not-exist"),
    ("could not translate host name", "unknown-host"),
    ("name or service not known", "unknown-host"),
    ("no route to host", "no-route-to-host"),
    ("unable to open database file", "cannot-open-file"),
    ("database is locked", "locked"),
    ("readonly database", "read-only"),
    ("disk i/o error", "disk-io-error"),
)


def describe_error(error: BaseException) -> str:
    """Why a database operation failed, as a fixed word or code: the driver's SQLite error name or
    PostgreSQL SQLSTATE, or a connection failure recognised by its message."""
    original = getattr(error, "orig", None) or error
    name = getattr(original, "sqlite_errorname", None)
    if isinstance(name, str):
        return name
    sqlstate = getattr(original, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        return f"sqlstate-{sqlstate}"
    text = str(original).lower()
    for fragment, word in _CONNECTION_FAILURES:
        if fragment in text:
            return word
    return type(original).__name__


class Storage:
    """An engine with the per-backend settings above, and the schema brought up to date lazily.

    `ensure_schema` runs the migrations once per process; if the database is unreachable at start
    the service still starts (cards matter more than statistics), `/readyz` reports it, and the
    next use tries again.
    """

    def __init__(self, url: str | URL, timeout: float = 5.0, *, hot: bool = False) -> None:
        """`hot`: for one small write per hook call (the JWT replay window) on SQLite: pooled
        connections (opening one costs ~2 ms, ten times the write) and `synchronous=NORMAL`.
        """
        self.url = normalise_url(url) if isinstance(url, str) else url
        self.timeout = timeout
        self.hot = hot
        self._lock = threading.Lock()
        self._migrated = False
        self._pid = os.getpid()
        self.engine = self._create_engine()

    @property
    def described(self) -> str:
        return describe_location(self.url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def _create_engine(self) -> Engine:
        if self.url.get_backend_name() == "sqlite":
            file = sqlite_file(self.url)
            if file is not None:
                folder = file.parent
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                except OSError as error:
                    raise ConfigError(
                        f"IVIG_CDS_DATABASE_URL: the folder {folder} cannot be created ({error.strerror})"
                    ) from None
            engine = create_engine(
                self.url,
                poolclass=QueuePool if self.hot else NullPool,
                hide_parameters=True,
                connect_args={"timeout": self.timeout, "check_same_thread": False},
            )
            busy_ms = int(self.timeout * 1000)

            @event.listens_for(engine, "connect")
            def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
                # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin, so DDL
                # is transactional too (the SQLAlchemy documentation's pysqlite recipe).
                dbapi_connection.isolation_level = None
                cursor = dbapi_connection.cursor()
                cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
                _enter_wal(cursor, deadline=time.monotonic() + self.timeout)
                cursor.execute("PRAGMA synchronous=NORMAL" if self.hot else "PRAGMA synchronous=FULL")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.close()

            @event.listens_for(engine, "begin")
            def _sqlite_begin(conn: Connection) -> None:
                # A write transaction takes the lock at once: a read-then-write transaction that
                # upgrades later can fail with SQLITE_BUSY without waiting for the busy timeout.
                write = conn.get_execution_options().get("ivig_write", False)
                conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

            return engine
        return create_engine(
            self.url,
            pool_pre_ping=True,
            pool_size=5,
            max_overflow=5,
            pool_timeout=self.timeout,
            hide_parameters=True,
            connect_args={"connect_timeout": max(1, round(self.timeout))},
        )

    def _after_fork(self) -> None:
        if os.getpid() != self._pid:
            # The parent's pooled connections belong to the parent; drop them without closing.
            self.engine.dispose(close=False)
            self._pid = os.getpid()

    @contextmanager
    def begin(self, write: bool = False, relaxed: bool = False) -> Iterator[Connection]:
        """A connection inside one transaction, committed on success (`write`: take the lock first).

        `relaxed` (PostgreSQL): the commit need not survive a crash of the database server
        (`synchronous_commit=off`), though every other session sees it at once all the same. For
        the JWT replay window only, whose rows guard tokens of minutes and are no clinical record
        (on SQLite a `hot` Storage gives the same with `synchronous=NORMAL`).
        """
        self._after_fork()
        with self.engine.connect() as conn:
            if write:
                conn = conn.execution_options(ivig_write=True)
            with conn.begin():
                if relaxed and self.dialect == "postgresql":
                    conn.execute(text("SET LOCAL synchronous_commit = off"))
                yield conn

    def ensure_schema(self) -> int:
        """Bring the schema up to date once per process; raise SQLAlchemyError if unreachable."""
        if self._migrated:
            return migrations.LATEST
        with self._lock:
            if not self._migrated:
                self._after_fork()
                version = migrations.upgrade(self.engine)
                self._migrated = True
                return version
        return migrations.LATEST

    def ping(self) -> bool:
        """Readiness: the schema is in place and the database answers a query."""
        try:
            self.ensure_schema()
            with self.begin() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as error:
            log.warning(
                "database not reachable",
                extra={"error": type(error).__name__, "failure": describe_error(error), "database": self.described},
            )
            return False
        return True

    def close(self) -> None:
        self.engine.dispose()


def init_app(app: Flask, settings: Settings) -> Storage:
    """Create the store, migrate it (tolerating an unreachable database) and register readiness."""
    storage = Storage(settings.database_url, timeout=settings.database_timeout)
    try:
        storage.ensure_schema()
    except SQLAlchemyError as error:
        log.error(
            "database unreachable at start: feedback answers 503 and audit rows wait until it is back",
            extra={"error": type(error).__name__, "failure": describe_error(error), "database": storage.described},
        )
    app.extensions["ivig_cds.storage"] = storage
    app.extensions.setdefault("ivig_cds.readiness", {})["database"] = storage.ping
    return storage
