"""The jti replay cache: in-process (bounded) and Redis (shared between replicas)."""

from __future__ import annotations

import socket
import uuid

import pytest
import responses

from cds_service.replay import MemoryJtiCache, RedisJtiCache, ReplayCacheUnavailableError, make_jti_cache
from tests.auth_tokens import JWKS_URL, bearer, ehr_jwks, jwt_app, token

REDIS_URL = "redis://127.0.0.1:6379/0"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_memory_cache_refuses_a_key_until_it_expires():
    clock = Clock()
    cache = MemoryJtiCache(10, clock=clock)
    assert cache.add("a", 1_060)
    assert not cache.add("a", 1_060)
    clock.now = 1_061
    assert cache.add("a", 1_200)
    assert len(cache) == 1


def test_memory_cache_is_bounded_and_evicts_what_expires_soonest():
    clock = Clock()
    cache = MemoryJtiCache(3, clock=clock)
    for key, expiry in (("soon", 1_010), ("late", 1_900), ("mid", 1_500)):
        assert cache.add(key, expiry)
    assert cache.add("new", 1_800)
    assert len(cache) == 3
    assert cache.add("soon", 1_010)  # evicted, so accepted again: the price of a bound
    assert not cache.add("late", 1_900)


def _redis_reachable() -> bool:
    try:
        import redis  # noqa: F401
    except ImportError:
        return False
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


needs_redis = pytest.mark.skipif(not _redis_reachable(), reason="no Redis at 127.0.0.1:6379 (or no redis package)")


@needs_redis
def test_redis_cache_refuses_a_replay_and_expires_keys():
    import time

    cache = make_jti_cache(REDIS_URL, 10)
    assert isinstance(cache, RedisJtiCache)
    key = f"test-{uuid.uuid4()}"
    assert cache.add(key, time.time() + 30)
    assert not cache.add(key, time.time() + 30)
    ttl = cache.client.ttl(cache.prefix + __import__("hashlib").sha256(key.encode()).hexdigest())
    assert 0 < ttl <= 32


@needs_redis
def test_two_replicas_sharing_redis_refuse_a_token_replayed_to_the_other():
    with responses.RequestsMock() as rsps:
        rsps.get(JWKS_URL, json=ehr_jwks())
        first = jwt_app(jti_cache_url=REDIS_URL).test_client()
        second = jwt_app(jti_cache_url=REDIS_URL).test_client()
        signed = bearer(token("/cds-services"))
        assert first.get("/cds-services", headers=signed).status_code == 200
        assert second.get("/cds-services", headers=signed).status_code == 401


def test_unreachable_redis_is_503_not_a_silent_accept():
    with responses.RequestsMock() as rsps:
        rsps.get(JWKS_URL, json=ehr_jwks())
        client = jwt_app(jti_cache_url="redis://127.0.0.1:9/0").test_client()
        response = client.get("/cds-services", headers=bearer(token("/cds-services")))
    assert response.status_code == 503
    assert response.get_json()["resourceType"] == "OperationOutcome"
    assert ReplayCacheUnavailableError.status == 503
