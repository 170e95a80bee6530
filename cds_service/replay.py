"""The `jti` replay cache: each CDS client JWT is accepted once within its lifetime.

Why: CDS Hooks 2.0 asks services to refuse a replayed token (same `iss` and `jti`). A token seen
once is remembered until its `exp` (plus leeway) has passed; after that the signature check refuses
it anyway. One process remembers in memory (bounded, so a flood of valid tokens cannot exhaust it);
several replicas share a Redis by `IVIG_CDS_JTI_CACHE_URL=redis://...`, else a token replayed to
another replica would pass.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from cds_service.config import ConfigError
from cds_service.errors import ServiceUnavailableError

log = logging.getLogger(__name__)


class ReplayCacheUnavailableError(ServiceUnavailableError):
    """The shared replay cache cannot be reached: refuse rather than accept a possible replay."""


class JtiCache(Protocol):
    def add(self, key: str, expires_at: float) -> bool:
        """Remember `key` until `expires_at` (epoch seconds); False when it is already remembered."""
        ...


class MemoryJtiCache:
    """In-process cache, bounded to `max_entries`: when full, the entry expiring soonest goes first."""

    def __init__(self, max_entries: int, clock: Callable[[], float] = time.time) -> None:
        self.max_entries = max_entries
        self.clock = clock
        self._expiry: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._warned_full = False

    def add(self, key: str, expires_at: float) -> bool:
        now = self.clock()
        with self._lock:
            self._purge(now)
            known = self._expiry.get(key)
            if known is not None and known > now:
                return False
            while len(self._expiry) >= self.max_entries:
                self._evict_one()
            self._expiry[key] = expires_at
            heapq.heappush(self._heap, (expires_at, key))
            return True

    def __len__(self) -> int:
        return len(self._expiry)

    def _purge(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            expires_at, key = heapq.heappop(self._heap)
            if self._expiry.get(key) == expires_at:
                del self._expiry[key]

    def _evict_one(self) -> None:
        if not self._warned_full:
            log.warning("jti replay cache is full: evicting the entries that expire soonest")
            self._warned_full = True
        while self._heap:
            expires_at, key = heapq.heappop(self._heap)
            if self._expiry.get(key) == expires_at:
                del self._expiry[key]
                return


class RedisJtiCache:
    """Shared cache: `SET key NX EXAT exp` is one atomic step, so two replicas cannot both accept."""

    def __init__(self, client: Any, prefix: str = "ivig-cds:jti:") -> None:
        self.client = client
        self.prefix = prefix

    def add(self, key: str, expires_at: float) -> bool:
        import redis  # the package is optional: only needed when a redis:// URL is configured

        # The key is hashed: `iss` and `jti` are the client's strings, of any length and content.
        name = self.prefix + hashlib.sha256(key.encode("utf-8")).hexdigest()
        try:
            stored = self.client.set(name, b"1", nx=True, exat=max(int(expires_at) + 1, int(time.time()) + 1))
        except redis.RedisError:
            raise ReplayCacheUnavailableError(
                "the token replay cache is unavailable; retry shortly"
            ) from None
        return bool(stored)


def make_jti_cache(url: str | None, max_entries: int) -> JtiCache:
    """The configured cache: in-process when `url` is unset, Redis for redis:// or rediss:// URLs."""
    if not url:
        return MemoryJtiCache(max_entries)
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("IVIG_CDS_JTI_CACHE_URL must be a redis://, rediss:// or unix:// URL")
    try:
        import redis
    except ImportError:
        raise ConfigError(
            "IVIG_CDS_JTI_CACHE_URL names Redis but the 'redis' package is not installed (pip install redis)"
        ) from None
    client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
    return RedisJtiCache(client)
