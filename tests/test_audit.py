"""The audit trail: a row per hook call (errors too), card → rule rows, no patient id in clear,
a writer that never blocks the clinician, counts what it drops and drains on shutdown."""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

import fhir_fixtures
from cds_service.audit import NO_KEY_WARNING, AuditRecord, AuditWriter, CardRow, patient_hash
from cds_service.storage import Storage
from cds_service.storage.schema import card as card_table
from cds_service.storage.schema import invocation as invocation_table
from tests.conftest import SIGN, close_app, make_app

P01 = fhir_fixtures.load("P01")
KEY = "an-audit-key-of-at-least-32-characters!"


@pytest.fixture
def app(database_url):
    app = make_app(database_url=database_url, audit_key=KEY)
    yield app
    close_app(app)


def rows(app) -> tuple[list[dict], list[dict]]:
    assert app.extensions["ivig_cds.audit"].flush(10)
    with app.extensions["ivig_cds.storage"].begin() as conn:
        invocations = [dict(r._mapping) for r in conn.execute(select(invocation_table))]
        cards = [dict(r._mapping) for r in conn.execute(select(card_table).order_by(card_table.c.id))]
    return invocations, cards


def test_a_hook_call_leaves_one_invocation_row_and_one_row_per_card(app):
    request = P01.prefetch_request(SIGN.prefetch)
    response = app.test_client().post(f"/cds-services/{SIGN.id}", json=request, headers={"X-Request-Id": "abc123"})
    assert response.status_code == 200
    answered = response.get_json()["cards"]
    (row,), cards = rows(app)
    assert row["service_id"] == SIGN.id and row["hook"] == "order-sign"
    assert row["hook_instance"] == request["hookInstance"]
    assert row["data_mode"] == "prefetch" and row["status"] == 200 and row["request_id"] == "abc123"
    assert 0 < row["latency_ms"] < 10_000
    assert abs((datetime.now(UTC) - row["received_at"]).total_seconds()) < 60
    assert [(c["invocation_id"], c["card_uuid"], c["rule_id"], c["indicator"]) for c in cards] == [
        (row["id"], c["uuid"], c["source"]["topic"]["code"], c["indicator"]) for c in answered
    ]
    assert row["patient_hash"] == hmac.new(KEY.encode(), P01.patient_id.encode(), hashlib.sha256).hexdigest()


def test_no_patient_id_in_clear_anywhere_in_the_audit_trail(app):
    app.test_client().post(f"/cds-services/{SIGN.id}", json=P01.prefetch_request(SIGN.prefetch))
    invocations, cards = rows(app)
    dumped = repr(invocations) + repr(cards)
    assert P01.patient_id not in dumped


def test_without_a_key_rows_carry_no_patient_hash_and_a_warning_says_so(database_url, caplog):
    caplog.set_level(logging.WARNING)
    app = make_app(database_url=database_url)
    try:
        app.test_client().post(f"/cds-services/{SIGN.id}", json=P01.prefetch_request(SIGN.prefetch))
        (row,), _ = rows(app)
        assert row["patient_hash"] is None
        assert NO_KEY_WARNING in caplog.text
    finally:
        close_app(app)


def test_the_hash_is_keyed():
    assert patient_hash(b"k1", "p") != patient_hash(b"k2", "p")
    assert patient_hash(None, "p") is None and patient_hash(b"k1", None) is None


def _foreign_draft(request: dict) -> None:
    request["context"]["draftOrders"]["entry"][0]["resource"]["subject"] = {"reference": "Patient/someone-else"}


def _foreign_fhir_server(request: dict) -> None:
    del request["prefetch"]["patient"]  # must be fetched, from a server that is not allowlisted
    request["fhirServer"] = "https://elsewhere.example.net/fhir"


@pytest.mark.parametrize(
    ("mutate", "status", "identified"),
    [
        (lambda r: r.pop("hookInstance"), 400, False),
        (lambda r: r.__setitem__("hook", "order-select"), 400, False),
        (_foreign_draft, 422, True),
        (lambda r: r["prefetch"].__setitem__("patient", None), 412, True),
        (_foreign_fhir_server, 403, True),
    ],
)
def test_refused_calls_are_audited_with_their_status_and_no_cards(app, mutate, status, identified):
    """A call refused before it is valid CDS Hooks has no identity; one refused later keeps it for tracing."""
    request = P01.prefetch_request(SIGN.prefetch)
    mutate(request)
    assert app.test_client().post(f"/cds-services/{SIGN.id}", json=request).status_code == status
    (row,), cards = rows(app)
    assert (row["status"], row["hook"], row["data_mode"], cards) == (status, "order-sign", "none", [])
    if identified:
        assert row["hook_instance"] == request["hookInstance"]
        assert row["patient_hash"] == patient_hash(KEY.encode(), P01.patient_id)
    else:
        assert row["patient_hash"] is None and row["hook_instance"] is None


def test_unknown_service_wrong_type_and_no_target_orders_are_audited(app):
    client = app.test_client()
    assert client.post("/cds-services/nope", json={}).status_code == 404
    assert client.post(f"/cds-services/{SIGN.id}", data="x", content_type="text/plain").status_code == 415
    out_of_scope = fhir_fixtures.load("P35").prefetch_request(SIGN.prefetch)
    assert client.post(f"/cds-services/{SIGN.id}", json=out_of_scope).get_json() == {"cards": []}
    client.get("/cds-services")  # discovery is not an invocation
    invocations, cards = rows(app)
    seen = sorted((r["service_id"], r["hook"], r["status"], r["data_mode"]) for r in invocations)
    assert seen == [
        (SIGN.id, "order-sign", 200, "none"),
        (SIGN.id, "order-sign", 415, "none"),
        ("nope", None, 404, "none"),
    ]
    assert cards == []


def test_audit_off_writes_nothing(database_url):
    app = make_app(database_url=database_url, audit=False)
    try:
        app.test_client().post(f"/cds-services/{SIGN.id}", json=P01.prefetch_request(SIGN.prefetch))
        assert "ivig_cds.audit" not in app.extensions
        with app.extensions["ivig_cds.storage"].begin() as conn:
            assert conn.execute(select(invocation_table)).all() == []
    finally:
        close_app(app)


# --- the writer ------------------------------------------------------------------------------


def record(n: int = 0, cards: int = 1) -> AuditRecord:
    return AuditRecord(
        id=f"{n:032x}",
        received_at=datetime.now(UTC),
        service_id=SIGN.id,
        hook="order-sign",
        hook_instance=None,
        patient_hash=None,
        data_mode="prefetch",
        status=200,
        latency_ms=1.0,
        request_id=None,
        cards=tuple(CardRow(f"card-{n}-{i}", "rule", "info") for i in range(cards)),
    )


class BlockingStore:
    """A store whose writes wait for `release`, to hold the writer busy."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.batches: list[int] = []

    def ensure_schema(self) -> int:
        self.entered.set()
        assert self.release.wait(10)
        return 1

    def begin(self, write: bool = False):
        store = self

        class Tx:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            def execute(self, _statement, params):
                if _statement.table.name == "invocation":
                    store.batches.append(len(params))

        return Tx()


def test_a_full_queue_drops_and_counts_rows_without_blocking_the_caller(caplog):
    store = BlockingStore()
    writer = AuditWriter(store, queue_size=2)  # type: ignore[arg-type]
    try:
        assert writer.submit(record(0))
        assert store.entered.wait(5)  # the writer holds record 0 and waits
        started = time.perf_counter()
        accepted = [writer.submit(record(n)) for n in range(1, 6)]
        assert time.perf_counter() - started < 0.05, "submit must never wait for the database"
        assert accepted == [True, True, False, False, False]
        assert writer.dropped == 3
        assert "3 audit rows dropped" not in caplog.text  # logged at the first drop, then every 1000th
        assert "1 audit rows dropped" in caplog.text
    finally:
        store.release.set()
        writer.close()
    assert sum(store.batches) == 3 and writer.written == 3


def test_close_drains_every_queued_row_in_batches(database_url):
    store = Storage(database_url)
    store.ensure_schema()
    writer = AuditWriter(store, queue_size=5000, batch_size=500)
    try:
        for n in range(2000):
            assert writer.submit(record(n, cards=2))
        writer.close()
        with store.begin() as conn:
            assert len(conn.execute(select(invocation_table.c.id)).all()) == 2000
            assert len(conn.execute(select(card_table.c.id)).all()) == 4000
        assert (writer.written, writer.dropped, writer.lost, writer.pending) == (2000, 0, 0, 0)
    finally:
        writer.close()
        store.close()


def test_an_unreachable_database_is_retried_then_counted_as_lost_and_the_writer_survives(tmp_path, caplog):
    store = Storage(f"sqlite:///{tmp_path}/a.db")
    failures = {"left": 2}
    real = store.ensure_schema

    def flaky() -> int:
        if failures["left"]:
            failures["left"] -= 1
            raise OperationalError("connect", {}, Exception("down"))
        return real()

    store.ensure_schema = flaky  # type: ignore[method-assign]
    writer = AuditWriter(store, retry_seconds=5)
    try:
        writer.submit(record(1))
        assert writer.flush(10)
        assert writer.written == 1 and writer.lost == 0, "two failures, then success on retry"
        failures["left"] = 10**6
        writer.retry_seconds = 0.2
        writer.submit(record(2))
        assert writer.flush(10)
        assert writer.lost == 1 and "audit rows lost: 1" in caplog.text
        failures["left"] = 0
        writer.submit(record(3))
        assert writer.flush(10) and writer.written == 2, "the writer thread is still alive"
    finally:
        writer.close()
        store.close()
