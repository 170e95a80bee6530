"""The `jti` replay window: each CDS client JWT is accepted once, by every worker and replica.

Why: CDS Hooks 2.0 ("Trusting CDS Clients") asks services to refuse a replayed token (same `iss`
and `jti`). A token seen once is remembered until its `exp` (plus leeway) has passed; after that
the signature check refuses it anyway.

Why the service's database by default: `ivig-cds serve` runs several gunicorn worker processes,
and a token replayed to another worker must be refused too, so the memory of one process is not
enough (it let 1 replay in 8 through with two workers). The database is already there, already
shared by every worker of a server (the SQLite file, whose write lock makes "insert unless present"
atomic across processes) and by every replica when it is PostgreSQL; it needs no new component on
a single node. Redis (`IVIG_CDS_JTI_CACHE_URL=redis://...`) keeps the check off the database when
replicas share a Redis anyway: `SET NX EXAT` is one atomic step there too.

Either store failing is a 503 for the call: a token is never accepted unchecked.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from cds_service.config import ConfigError
from cds_service.errors import ServiceUnavailableError
from cds_service.storage import Storage
from cds_service.storage.schema import jti_seen

log = logging.getLogger(__name__)

PURGE_INTERVAL = 60.0  # seconds between two deletions of expired rows by one process


class ReplayCacheUnavailableError(ServiceUnavailableError):
    """The replay store cannot be reached: refuse rather than accept a possible replay."""


class JtiCache(Protocol):
    def add(self, key: str, expires_at: float) -> bool:
        """Remember `key` until `expires_at` (epoch seconds); False when it is already remembered."""
        ...


def _hashed(key: str) -> str:
    # `iss` and `jti` are the client's strings, of any length and content: store a digest of them.
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class DatabaseJtiCache:
    """The replay window in the service's database: one row per token, taken by an atomic upsert.

    "Insert, or take over a row whose token has expired" is one statement
    (`INSERT .. ON CONFLICT DO UPDATE .. WHERE expires_at <= now`) in a write transaction: on
    SQLite the file's write lock serialises it across worker processes, on PostgreSQL the primary
    key does across replicas. It returns the row only if the token was not seen.
    """

    def __init__(
        self, storage: Storage, clock: Callable[[], float] = time.time, purge_interval: float = PURGE_INTERVAL
    ) -> None:
        # SQLite: a pooled twin of the store, since a fresh connection per call costs more than the
        # write. PostgreSQL: the store's own pool, so replicas open no further connections.
        self._own = storage.dialect == "sqlite"
        self.storage = Storage(storage.url, storage.timeout, hot=True) if self._own else storage
        self._schema = storage
        self.clock = clock
        self.purge_interval = purge_interval
        self._next_purge = 0.0
        self._purge_lock = threading.Lock()

    def add(self, key: str, expires_at: float) -> bool:
        now = self.clock()
        dialect = postgresql if self.storage.dialect == "postgresql" else sqlite
        statement = (
            dialect.insert(jti_seen)
            .values(token_key=_hashed(key), expires_at=expires_at)
            .on_conflict_do_update(
                index_elements=[jti_seen.c.token_key],
                set_={"expires_at": expires_at},
                where=jti_seen.c.expires_at <= now,
            )
            .returning(jti_seen.c.token_key)
        )
        try:
            self._schema.ensure_schema()
            with self.storage.begin(write=True, relaxed=True) as conn:
                taken = conn.execute(statement).first() is not None
            self._purge_if_due(now)
        except SQLAlchemyError as error:
            log.error("jti replay store unavailable", extra={"error": type(error).__name__})
            raise ReplayCacheUnavailableError("the token replay store is unavailable; retry shortly") from None
        return taken

    def _purge_if_due(self, now: float) -> None:
        """Delete expired rows now and then, so the table holds about one token lifetime of calls."""
        if now < self._next_purge or not self._purge_lock.acquire(blocking=False):
            return
        try:
            self._next_purge = now + self.purge_interval
            with self.storage.begin(write=True, relaxed=True) as conn:
                conn.execute(delete(jti_seen).where(jti_seen.c.expires_at <= now))
        finally:
            self._purge_lock.release()

    def close(self) -> None:
        if self._own:
            self.storage.close()


class RedisJtiCache:
    """Shared cache: `SET key NX EXAT exp` is one atomic step, so two replicas cannot both accept."""

    def __init__(self, client: Any, prefix: str = "ivig-cds:jti:") -> None:
        self.client = client
        self.prefix = prefix

    def add(self, key: str, expires_at: float) -> bool:
        import redis  # the package is optional: only needed when a redis:// URL is configured

        name = self.prefix + _hashed(key)
        try:
            stored = self.client.set(name, b"1", nx=True, exat=max(int(expires_at) + 1, int(time.time()) + 1))
        except redis.RedisError:
            raise ReplayCacheUnavailableError("the token replay cache is unavailable; retry shortly") from None
        return bool(stored)


def make_jti_cache(url: str | None, storage: Storage) -> JtiCache:
    """The configured store: the service's database when `url` is unset, Redis for redis:// URLs."""
    if not url:
        return DatabaseJtiCache(storage)
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("IVIG_CDS_JTI_CACHE_URL must be a redis://, rediss:// or unix:// URL")
    try:
        import redis
    except ImportError:
        raise ConfigError(
            "IVIG_CDS_JTI_CACHE_URL names Redis but the 'redis' package is not installed "
            "(pip install 'ivig-cds[redis]')"
        ) from None
    client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
    return RedisJtiCache(client)
