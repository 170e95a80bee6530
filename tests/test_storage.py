"""The store: URLs, SQLite settings, migrations (idempotent, concurrent, atomic), readiness.

Parametrized over SQLite and PostgreSQL (`database_url` in conftest): PostgreSQL runs whenever one
is reachable and is skipped with the reason otherwise.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, Connection, Integer, MetaData, Table, inspect, select, text

import fhir_fixtures
from cds_service.config import ConfigError, Settings, load_settings
from cds_service.storage import Storage, migrations, normalise_url
from cds_service.storage.schema import UtcDateTime, metadata, schema_version
from tests.conftest import SIGN, make_app

ALL_VERSIONS = [m.number for m in migrations.MIGRATIONS]


@pytest.fixture
def store(database_url):
    storage = Storage(database_url)
    yield storage
    storage.close()


def test_migration_creates_the_schema_the_queries_expect(store):
    assert store.ensure_schema() == migrations.LATEST
    with store.begin() as conn:
        inspector = inspect(conn)
        for table in metadata.sorted_tables:
            columns = {c["name"] for c in inspector.get_columns(table.name)}
            assert columns == set(table.columns.keys()), table.name
        uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("feedback")}
        assert ("card_uuid", "outcome", "outcome_timestamp") in uniques
        versions = conn.execute(select(schema_version.c.version)).scalars().all()
    assert versions == [m.number for m in migrations.MIGRATIONS]


def _all_at_once(stores: list[Storage], action: Callable[[Storage], object]) -> list[BaseException]:
    """Run `action` on every store from its own thread, released together; return what they raised."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(stores))

    def run(storage: Storage) -> None:
        try:
            barrier.wait(10)
            action(storage)
        except BaseException as error:  # collected, asserted by the caller
            errors.append(error)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return errors


def test_upgrade_twice_and_from_several_starts_at_once_applies_each_migration_once(database_url):
    stores = [Storage(database_url) for _ in range(4)]
    try:
        assert _all_at_once(stores, lambda storage: migrations.upgrade(storage.engine)) == []
        assert migrations.upgrade(stores[0].engine) == migrations.LATEST
        with stores[0].begin() as conn:
            assert conn.execute(select(schema_version.c.version)).scalars().all() == ALL_VERSIONS
    finally:
        for storage in stores:
            storage.close()


def test_workers_opening_a_fresh_sqlite_file_together_all_start(tmp_path):
    """gunicorn workers and replicas open a brand-new file at once; none may fail to start.

    The first connection to a fresh file switches it to WAL, which needs an exclusive lock that
    SQLite refuses at once ("database is locked") instead of waiting. Found by CI; repeated on
    fresh files because the race is lost only now and then.
    """
    for round_ in range(15):
        stores = [Storage(f"sqlite:///{tmp_path / f'fresh{round_}.db'}") for _ in range(8)]
        try:
            assert _all_at_once(stores, Storage.ensure_schema) == [], f"round {round_}"
            with stores[0].begin() as conn:
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert conn.execute(select(schema_version.c.version)).scalars().all() == ALL_VERSIONS
        finally:
            for storage in stores:
                storage.close()


def test_a_failing_migration_leaves_the_previous_version_intact(store, monkeypatch):
    store.ensure_schema()

    def half_done(conn: Connection) -> None:
        Table("half_done", MetaData(), Column("id", Integer, primary_key=True)).create(conn)
        raise RuntimeError("the next migration breaks after its first statement")

    following = migrations.LATEST + 1
    monkeypatch.setattr(
        migrations, "MIGRATIONS", (*migrations.MIGRATIONS, migrations.Migration(following, "x", half_done))
    )
    monkeypatch.setattr(migrations, "LATEST", following)
    with pytest.raises(RuntimeError):
        migrations.upgrade(store.engine)
    with store.begin() as conn:
        assert not inspect(conn).has_table("half_done"), "DDL of a failed migration was committed"
        assert migrations.current_version(conn) == following - 1


def test_sqlite_runs_in_wal_mode_with_full_sync(tmp_path):
    storage = Storage(f"sqlite:///{tmp_path}/sub/dir/x.db")  # parent folders are created
    try:
        with storage.begin() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 5000
    finally:
        storage.close()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg"),
        ("postgres://u@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg"),
        ("sqlite:///x.db", "sqlite"),
    ],
)
def test_urls_are_pinned_to_the_installed_drivers(raw, expected):
    assert normalise_url(raw).drivername == expected


@pytest.mark.parametrize("raw", ["sqlite://", "sqlite:///:memory:", "mysql://u@h/db", "not a url"])
def test_urls_that_cannot_work_are_refused_at_start(raw):
    with pytest.raises(ConfigError, match="IVIG_CDS_DATABASE_URL"):
        normalise_url(raw)


def test_settings_read_the_database_and_audit_variables():
    settings = load_settings(
        {"IVIG_CDS_DATABASE_URL": "postgresql://u@h/db", "IVIG_CDS_AUDIT": "false", "IVIG_CDS_AUDIT_KEY": "k" * 32}
    )
    assert settings.database_url == "postgresql://u@h/db"
    assert settings.audit is False and settings.audit_key == "k" * 32
    assert "k" * 32 not in repr(settings), "the audit key must not appear in a repr"
    assert Settings().database_url == "sqlite:///ivig-cds.db"


@pytest.mark.parametrize(
    "environ",
    [
        {"IVIG_CDS_DATABASE_URL": "mysql://u@h/db"},
        {"IVIG_CDS_DATABASE_URL": ""},
        {"IVIG_CDS_AUDIT_KEY": "short"},
        {"IVIG_CDS_AUDIT_QUEUE_SIZE": "0"},
        {"IVIG_CDS_DATABASE_TIMEOUT": "0"},
    ],
)
def test_invalid_database_settings_stop_the_service(environ):
    with pytest.raises(ConfigError):
        load_settings(environ)


def test_utc_datetime_refuses_naive_times_and_reads_back_utc(store):
    store.ensure_schema()
    column = UtcDateTime()
    with pytest.raises(ValueError, match="aware"):
        column.process_bind_param(datetime(2026, 6, 1, 12), store.engine.dialect)
    paris = datetime(2026, 6, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    with store.begin(write=True) as conn:
        conn.execute(schema_version.insert().values(version=99, description="t", applied_at=paris))
    with store.begin() as conn:
        back = conn.execute(select(schema_version.c.applied_at).where(schema_version.c.version == 99)).scalar()
    assert back == datetime(2026, 6, 1, 12, 0, tzinfo=UTC) and back.tzinfo is UTC


def test_unreachable_database_keeps_cards_flowing_but_is_not_ready():
    app = make_app(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none", database_timeout=1.0)
    try:
        client = app.test_client()
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.get_json()["checks"]["database"] is False
        request = fhir_fixtures.load("P01").prefetch_request(SIGN.prefetch)
        assert client.post(f"/cds-services/{SIGN.id}", json=request).status_code == 200
    finally:
        app.extensions["ivig_cds.audit"].retry_seconds = 0.0  # do not wait for a database that is not there
        app.extensions["ivig_cds.audit"].close()
        app.extensions["ivig_cds.storage"].close()


def test_readiness_reports_the_database(database_url):
    app = make_app(database_url=database_url)
    try:
        body = app.test_client().get("/readyz").get_json()
        assert body["checks"]["database"] is True
    finally:
        app.extensions["ivig_cds.storage"].close()
