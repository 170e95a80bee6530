"""The jti replay window: in the service's database by default (every worker of a server, and
every replica sharing PostgreSQL), in Redis when configured; never an unchecked accept."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import responses
from sqlalchemy import func, select

from cds_service.replay import DatabaseJtiCache, RedisJtiCache, ReplayCacheUnavailableError, make_jti_cache
from cds_service.storage import Storage
from cds_service.storage.schema import jti_seen
from tests.auth_tokens import JWKS_URL, PUBLIC_BASE, bearer, ehr_jwks, jwt_app, token
from tests.jwks_server import serving_jwks
from tests.processes import running_service

REDIS_URL = "redis://127.0.0.1:6379/0"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(database_url):
    storage = Storage(database_url)
    yield storage
    storage.close()


@pytest.fixture
def window(store):
    """Replay windows on `store`, closed after the test."""
    made: list[DatabaseJtiCache] = []

    def make(**options) -> DatabaseJtiCache:
        made.append(DatabaseJtiCache(store, **options))
        return made[-1]

    yield make
    for cache in made:
        cache.close()


def test_database_window_refuses_a_key_until_it_expires_then_takes_it_over(window):
    clock = Clock()
    cache = window(clock=clock)
    assert cache.add("iss\njti-a", 1_060)
    assert not cache.add("iss\njti-a", 1_060)
    assert cache.add("iss\njti-b", 1_060)
    clock.now = 1_061
    assert cache.add("iss\njti-a", 1_200)
    assert not cache.add("iss\njti-a", 1_200)


def test_database_window_deletes_expired_rows_and_stores_no_client_string(store, window):
    clock = Clock()
    cache = window(clock=clock, purge_interval=10)
    for n in range(5):
        cache.add(f"https://ehr.example.org\njti-{n}", 1_005)
    clock.now = 1_020
    cache.add("https://ehr.example.org\nlate", 1_100)
    with store.begin() as conn:
        keys = conn.execute(select(jti_seen.c.token_key)).scalars().all()
    assert keys == [hashlib.sha256(b"https://ehr.example.org\nlate").hexdigest()]


def test_processes_racing_on_one_token_accept_it_once(database_url):
    """Separate engines stand for worker processes: one insert wins, whatever the interleaving."""
    stores = [Storage(database_url) for _ in range(6)]
    try:
        caches = [DatabaseJtiCache(s) for s in stores]
        for round_ in range(10):
            barrier = threading.Barrier(len(caches))
            key = f"race-{round_}-{uuid.uuid4()}"

            def add(cache: DatabaseJtiCache, key: str = key, barrier: threading.Barrier = barrier) -> bool:
                barrier.wait(10)
                return cache.add(key, time.time() + 60)

            with ThreadPoolExecutor(len(caches)) as pool:
                results = list(pool.map(add, caches))
            assert results.count(True) == 1, f"round {round_}: {results}"
    finally:
        for cache in caches:
            cache.close()
        for storage in stores:
            storage.close()


def test_unreachable_database_is_503_not_a_silent_accept(tmp_path):
    with responses.RequestsMock() as rsps:
        rsps.get(JWKS_URL, json=ehr_jwks())
        down = "postgresql+psycopg://nobody@127.0.0.1:9/none"
        client = jwt_app(database_url=down, database_timeout=0.5).test_client()
        response = client.get("/cds-services", headers=bearer(token("/cds-services")))
    assert response.status_code == 503
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_two_apps_sharing_one_database_refuse_a_token_replayed_to_the_other(tmp_path):
    shared = f"sqlite:///{tmp_path / 'shared.db'}"
    with responses.RequestsMock() as rsps:
        rsps.get(JWKS_URL, json=ehr_jwks())
        first = jwt_app(database_url=shared).test_client()
        second = jwt_app(database_url=shared).test_client()
        signed = bearer(token("/cds-services"))
        assert first.get("/cds-services", headers=signed).status_code == 200
        assert second.get("/cds-services", headers=signed).status_code == 401


@pytest.mark.integration
def test_one_token_sent_many_times_to_a_multi_worker_server_is_accepted_once(tmp_path):
    """The default deployment: `ivig-cds serve` with several workers, no replay setting at all.

    With a per-process memory, a replay that reaches another worker was accepted (1 in 8 with two
    workers). Here 4 workers get the token 48 times, 16 at once and on new connections each time.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVIG_CDS_")}
    with serving_jwks(tmp_path) as jwks:
        env.update(
            IVIG_CDS_JWT_ISSUERS=jwks.issuers(),
            IVIG_CDS_PUBLIC_BASE_URL=PUBLIC_BASE,
            IVIG_CDS_CA_BUNDLE=str(jwks.ca_bundle),
        )
        with running_service(tmp_path, env, cwd=tmp_path, workers=4) as base:
            warm = bearer(token("/cds-services"))  # every worker loads the JWKS on its first call
            assert requests.get(f"{base}/cds-services", headers=warm, timeout=10).status_code == 200
            signed = bearer(token("/cds-services"))

            def send(_: int) -> int:
                return requests.get(f"{base}/cds-services", headers=signed, timeout=10).status_code

            statuses = []
            for _ in range(3):
                with ThreadPoolExecutor(16) as pool:
                    statuses += list(pool.map(send, range(16)))
    assert sorted(set(statuses)) == [200, 401]
    assert statuses.count(200) == 1, statuses
    assert (tmp_path / "ivig-cds.db").exists()  # the default store: the server's own SQLite file


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


def needs_redis() -> None:
    if not _redis_reachable():
        if os.environ.get("CI"):
            pytest.fail("CI must run the Redis replay tests: no Redis at 127.0.0.1:6379 (or no redis package)")
        pytest.skip("no Redis at 127.0.0.1:6379 (or no redis package)")


def test_redis_cache_refuses_a_replay_and_expires_keys():
    needs_redis()
    cache = make_jti_cache(REDIS_URL, None)  # type: ignore[arg-type]  (no database needed for Redis)
    assert isinstance(cache, RedisJtiCache)
    key = f"test-{uuid.uuid4()}"
    assert cache.add(key, time.time() + 30)
    assert not cache.add(key, time.time() + 30)
    ttl = cache.client.ttl(cache.prefix + hashlib.sha256(key.encode()).hexdigest())
    assert 0 < ttl <= 32


def test_two_replicas_sharing_redis_refuse_a_token_replayed_to_the_other():
    needs_redis()
    with responses.RequestsMock() as rsps:
        rsps.get(JWKS_URL, json=ehr_jwks())
        first = jwt_app(jti_cache_url=REDIS_URL).test_client()
        second = jwt_app(jti_cache_url=REDIS_URL).test_client()
        signed = bearer(token("/cds-services"))
        assert first.get("/cds-services", headers=signed).status_code == 200
        assert second.get("/cds-services", headers=signed).status_code == 401
    with first.application.extensions["ivig_cds.storage"].begin() as conn:
        assert conn.execute(select(func.count()).select_from(jti_seen)).scalar() == 0  # Redis, not the database


def test_unreachable_redis_is_503_not_a_silent_accept():
    with responses.RequestsMock() as rsps:
        rsps.get(JWKS_URL, json=ehr_jwks())
        client = jwt_app(jti_cache_url="redis://127.0.0.1:9/0").test_client()
        response = client.get("/cds-services", headers=bearer(token("/cds-services")))
    assert response.status_code == 503
    assert response.get_json()["resourceType"] == "OperationOutcome"
    assert ReplayCacheUnavailableError.status == 503
