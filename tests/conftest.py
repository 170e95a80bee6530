"""Shared test wiring: an app judged at a fixed moment, and a client that checks every answer.

Every CDS response that comes back through `hook_client` is validated against the project's CDS
Hooks response schema, and every error body against the OperationOutcome shape, so no HTTP test
can pass with a malformed answer.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient

from cds_service import create_app
from cds_service.protocol import first_error
from fhir_fixtures import Scenario
from hooks.fhir_model import Resource, parse_resource
from hooks.services import SERVICES, ServiceDefinition
from tests.fhir_mock import BASE, serve_scenario

AS_OF = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SIGN = next(s for s in SERVICES if s.hook == "order-sign")
SELECT = next(s for s in SERVICES if s.hook == "order-select")


_DATABASES: Path | None = None  # set by the session fixture below
_APPS: list[Flask] = []


def fresh_database_url() -> str:
    """A new SQLite file under the tests' database directory (never the working directory).

    Apps built at import time (a module-level app for schemathesis) come before the session
    fixture, so the directory is made on first use and removed when the process exits.
    """
    global _DATABASES
    if _DATABASES is None:
        _DATABASES = Path(tempfile.mkdtemp(prefix="ivig-cds-test-db-"))
        atexit.register(shutil.rmtree, _DATABASES, True)
    return f"sqlite:///{_DATABASES / uuid.uuid4().hex}.db"


def make_app(**config: Any) -> Flask:
    """An app judged at AS_OF, with its own SQLite file so tests never share feedback or audit rows."""
    config.setdefault("auth", "off")
    config.setdefault("clock", lambda: AS_OF)
    config.setdefault("database_url", fresh_database_url())
    app = create_app(config)
    _APPS.append(app)
    return app


def close_app(app: Flask) -> None:
    """Drain the audit writer and dispose of the engine (no thread or connection outlives a test)."""
    writer = app.extensions.get("ivig_cds.audit")
    if writer is not None:
        writer.close()
    store = app.extensions.get("ivig_cds.storage")
    if store is not None:
        store.close()
    replay = app.extensions.get("ivig_cds.replay")
    if replay is not None and hasattr(replay, "close"):
        replay.close()


@pytest.fixture(scope="session", autouse=True)
def _databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A directory for the tests' SQLite files; servers started by tests inherit one through the environment."""
    fresh_database_url()  # makes the directory if no app was built at import time
    with pytest.MonkeyPatch.context() as env:
        env.setenv("IVIG_CDS_DATABASE_URL", f"sqlite:///{_DATABASES / 'environment.db'}")
        yield
    for app in _APPS:
        close_app(app)
    _APPS.clear()


@pytest.fixture(autouse=True)
def _close_apps_built_by_the_test() -> Iterator[None]:
    before = len(_APPS)
    yield
    for app in _APPS[before:]:
        close_app(app)
    del _APPS[before:]


@pytest.fixture
def app() -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def check_response(response: Any) -> dict[str, Any]:
    """The JSON body, after asserting it is a valid CDS response (200) or an OperationOutcome."""
    body = response.get_json()
    assert body is not None, f"non-JSON body with status {response.status_code}"
    if response.status_code == 200 and "cards" in body:
        problem = first_error("cds-response.json", body)
        assert problem is None, problem
    elif response.status_code >= 400:
        assert body["resourceType"] == "OperationOutcome", body
        assert body["issue"][0]["severity"] == "error"
        assert body["issue"][0]["diagnostics"]
    return body


@pytest.fixture
def call(client: FlaskClient) -> Callable[..., tuple[int, dict[str, Any]]]:
    def post(service_id: str, body: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        response = client.post(f"/cds-services/{service_id}", json=body, **kwargs)
        return response.status_code, check_response(response)

    return post


def rule_set(body: dict[str, Any]) -> set[tuple[str, str]]:
    return {(card["source"]["topic"]["code"], card["indicator"]) for card in body["cards"]}


#: The two ways the service gets a chart: prefetched by the client, or fetched from a FHIR server.
MODES = ("prefetch", "fetched")


def answer(
    app_or_client: Flask | FlaskClient, scenario: Scenario, mode: str, service: ServiceDefinition = SIGN
) -> dict[str, Any]:
    """The CDS response of `service` to `scenario`, its record prefetched or read from `serve_scenario`."""
    client = app_or_client.test_client() if isinstance(app_or_client, Flask) else app_or_client
    if mode == "prefetch":
        request = scenario.prefetch_request(service.prefetch, hook=service.hook)
        response = client.post(f"/cds-services/{service.id}", json=request)
    else:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            serve_scenario(rsps, scenario)
            response = client.post(f"/cds-services/{service.id}", json=scenario.fetch_request(BASE, hook=service.hook))
    assert response.status_code == 200, response.get_data(as_text=True)
    return check_response(response)


def resources_of(payload: dict[str, Any] | None) -> list[Resource]:
    """A prefetch value parsed strictly, for tests that judge without the service's tolerant data
    path: a Bundle's resources (OperationOutcome search warnings skipped), or the one resource."""
    if payload is None:
        return []
    if payload.get("resourceType") != "Bundle":
        return [parse_resource(payload)]
    resources = (entry.get("resource") for entry in payload.get("entry") or [])
    return [parse_resource(r) for r in resources if r is not None and r.get("resourceType") != "OperationOutcome"]


# --- databases: every storage test runs on SQLite, and on PostgreSQL whenever one is reachable ----

POSTGRES_CANDIDATES = ("postgresql://postgres@127.0.0.1:5432/test", "postgresql://root@127.0.0.1:5432/test")


def reachable_postgres() -> tuple[str | None, list[str]]:
    """The PostgreSQL to test against (`IVIG_CDS_TEST_POSTGRES_URL`, else local trust auth), if one
    answers, and why each one tried did not."""
    import psycopg

    configured = os.environ.get("IVIG_CDS_TEST_POSTGRES_URL")
    reasons = []
    for conninfo in (configured,) if configured else POSTGRES_CANDIDATES:
        try:
            with psycopg.connect(conninfo, connect_timeout=2, autocommit=True) as conn:
                conn.execute("SELECT 1")
            return conninfo, reasons
        except psycopg.Error as error:
            reasons.append(f"{conninfo.split('@')[-1]}: {type(error).__name__}")
    return None, reasons


@pytest.fixture(scope="session")
def postgres_conninfo() -> str:
    """A PostgreSQL server to test against, or skip (on a developer's machine without one; CI must run them)."""
    conninfo, reasons = reachable_postgres()
    if conninfo is None:
        message = "no PostgreSQL reachable (set IVIG_CDS_TEST_POSTGRES_URL): " + "; ".join(reasons)
        if os.environ.get("CI"):
            pytest.fail(message + "; CI must run the PostgreSQL tests")
        pytest.skip(message)
    return conninfo


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a fresh SQLite file, or a fresh PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    import psycopg

    conninfo = request.getfixturevalue("postgres_conninfo")
    schema = f"ivig_cds_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield conninfo.replace("postgresql://", "postgresql+psycopg://") + f"?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
