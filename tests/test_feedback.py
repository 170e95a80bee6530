"""`POST /cds-services/{id}/feedback`: validation, durability before 200, idempotence, unknown cards.

Storage-touching tests run on SQLite and PostgreSQL (`database_url`); HTTP-edge tests on SQLite.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

import fhir_fixtures
from cds_service import feedback as feedback_module
from cds_service import report
from cds_service.errors import SchemaViolationError
from cds_service.feedback import parse_timestamp
from cds_service.storage.schema import feedback as feedback_table
from tests.conftest import SIGN, check_response, close_app, make_app

P01 = fhir_fixtures.load("P01")
URL = f"/cds-services/{SIGN.id}/feedback"
UNKNOWN_CARD = "0f2b7c1e-0000-4000-8000-000000000001"
COMMENT = "Patient Jane Roe, MRN 99-1234, already on the ward protocol"  # stands for patient data


@pytest.fixture
def app(database_url):
    app = make_app(database_url=database_url)
    yield app
    close_app(app)


@pytest.fixture
def client(app):
    return app.test_client()


def issued_cards(client, settle: bool = True) -> list[dict]:
    """Cards from a hook call; `settle` waits for their audit rows, so a loaded machine changes nothing."""
    response = client.post(f"/cds-services/{SIGN.id}", json=P01.prefetch_request(SIGN.prefetch))
    assert response.status_code == 200
    if settle:
        assert client.application.extensions["ivig_cds.audit"].flush(30)
    return response.get_json()["cards"]


class HeldWriter:
    """Holds the audit writer's database writes until released: a writer that is behind, on demand."""

    def __init__(self, app, monkeypatch) -> None:
        self.release = threading.Event()
        writer = app.extensions["ivig_cds.audit"]
        write = writer._write

        def held(batch):
            assert self.release.wait(30), "the test never released the audit writer"
            write(batch)

        monkeypatch.setattr(writer, "_write", held)


def overridden(card: str, when: str = "2026-06-01T12:05:00Z", comment: str | None = COMMENT) -> dict:
    reason: dict = {"reason": {"system": "urn:ivig-cds:override-reason", "code": "already-addressed"}}
    if comment:
        reason["userComment"] = comment
    return {"card": card, "outcome": "overridden", "overrideReason": reason, "outcomeTimestamp": when}


def accepted(card: dict, when: str = "2026-06-01T12:06:00Z") -> dict:
    return {
        "card": card["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
        "outcomeTimestamp": when,
    }


def stored(app) -> list[dict]:
    store = app.extensions["ivig_cds.storage"]
    with store.begin() as conn:
        return [dict(r._mapping) for r in conn.execute(select(feedback_table).order_by(feedback_table.c.id))]


def post(client, body, **kwargs):
    response = client.post(URL, json=body, **kwargs)
    return response.status_code, check_response(response)


def test_feedback_on_issued_cards_is_stored_and_answered_with_an_empty_object(app, client):
    cards = issued_cards(client)
    critical = next(c for c in cards if c.get("suggestions"))
    other = next(c for c in cards if c is not critical)
    status, body = post(client, {"feedback": [accepted(critical), overridden(other["uuid"])]})
    assert (status, body) == (200, {})
    rows = stored(app)
    assert [(r["card_uuid"], r["outcome"], r["known_card"]) for r in rows] == [
        (critical["uuid"], "accepted", True),
        (other["uuid"], "overridden", True),
    ]
    assert json.loads(rows[0]["accepted_suggestions"]) == [critical["suggestions"][0]["uuid"]]
    assert rows[1]["override_reason_code"] == "already-addressed"
    assert rows[1]["user_comment"] == COMMENT, "governance needs the comment: it is stored"
    assert rows[1]["outcome_timestamp"] == datetime(2026, 6, 1, 12, 5, tzinfo=UTC)
    assert rows[0]["service_id"] == SIGN.id


def test_feedback_right_after_the_call_waits_for_the_cards_audit_rows(app, client, monkeypatch):
    held = HeldWriter(app, monkeypatch)
    card = issued_cards(client, settle=False)[0]
    threading.Timer(0.3, held.release.set).start()  # the writer catches up while feedback waits
    assert post(client, {"feedback": [overridden(card["uuid"])]})[0] == 200
    (row,) = stored(app)
    assert row["known_card"] is True


def test_a_writer_too_far_behind_flags_the_card_unknown_but_the_report_still_counts_it(app, client, monkeypatch):
    held = HeldWriter(app, monkeypatch)
    monkeypatch.setattr(feedback_module, "KNOWN_CARD_WAIT", 0.1)
    card = issued_cards(client, settle=False)[0]
    try:
        assert post(client, {"feedback": [overridden(card["uuid"])]})[0] == 200, "feedback never waits long"
    finally:
        held.release.set()
    (row,) = stored(app)
    assert row["known_card"] is False, "the flag says what was known when the report arrived"
    assert app.extensions["ivig_cds.audit"].flush(30)
    built = report.build(app.extensions["ivig_cds.storage"])
    rule = card["source"]["topic"]["code"]
    assert {r.rule: r.overridden for r in built.rules}[rule] == 1
    assert built.unknown_card_feedback == 0, "the report joins at report time, when the card is on record"


def test_unknown_card_is_stored_and_flagged(app, client):
    assert post(client, {"feedback": [overridden(UNKNOWN_CARD)]})[0] == 200
    (row,) = stored(app)
    assert row["card_uuid"] == UNKNOWN_CARD and row["known_card"] is False


def test_a_retried_report_is_stored_once_even_written_in_another_time_zone(app, client):
    item = overridden(UNKNOWN_CARD, "2026-06-01T12:05:00Z")
    same_instant = overridden(UNKNOWN_CARD.upper(), "2026-06-01T14:05:00.000+02:00")
    for body in ({"feedback": [item]}, {"feedback": [item]}, {"feedback": [same_instant, item]}):
        assert post(client, body)[0] == 200
    assert len(stored(app)) == 1


def test_suggestions_accepted_in_separate_items_for_one_moment_are_all_kept(app, client):
    """One item per accepted suggestion, same card and moment: one report, every suggestion in it."""
    ids = [f"0f2b7c1e-0000-4000-8000-00000000001{n}" for n in range(3)]

    def item(*chosen: str) -> dict:
        card = {"uuid": UNKNOWN_CARD, "suggestions": [{"uuid": i} for i in chosen]}
        accepted_item = accepted(card)
        accepted_item["acceptedSuggestions"] = [{"id": i} for i in chosen]
        return accepted_item

    assert post(client, {"feedback": [item(ids[0]), item(ids[1])]})[0] == 200
    assert post(client, {"feedback": [item(ids[2])]})[0] == 200
    assert post(client, {"feedback": [item(ids[2])]})[0] == 200  # a retry changes nothing
    (row,) = stored(app)
    assert json.loads(row["accepted_suggestions"]) == ids


def test_another_outcome_or_moment_for_the_same_card_is_a_new_row(app, client):
    post(client, {"feedback": [overridden(UNKNOWN_CARD, "2026-06-01T12:05:00Z")]})
    post(client, {"feedback": [overridden(UNKNOWN_CARD, "2026-06-01T12:05:01Z")]})
    card = {"uuid": UNKNOWN_CARD, "suggestions": [{"uuid": "0f2b7c1e-0000-4000-8000-000000000002"}]}
    post(client, {"feedback": [accepted(card, "2026-06-01T12:05:00Z")]})
    assert [(r["outcome"], r["outcome_timestamp"].second) for r in stored(app)] == [
        ("overridden", 0),
        ("overridden", 1),
        ("accepted", 0),
    ]


# --- the HTTP edge (SQLite is enough) ------------------------------------------------------


@pytest.fixture
def edge():
    app = make_app()
    return app.test_client()


def test_unknown_service_is_404(edge):
    response = edge.post("/cds-services/no-such-service/feedback", json={"feedback": [overridden(UNKNOWN_CARD)]})
    assert response.status_code == 404
    check_response(response)


def test_wrong_content_type_is_415(edge):
    response = edge.post(URL, data="feedback", content_type="text/plain")
    assert response.status_code == 415
    check_response(response)


def test_oversized_body_is_413():
    client = make_app(max_body_bytes=2048).test_client()
    items = [overridden(UNKNOWN_CARD, f"2026-06-01T12:{i % 60:02d}:00Z") for i in range(40)]
    response = client.post(URL, json={"feedback": items})
    assert response.status_code == 413
    check_response(response)


def test_malformed_json_is_400(edge):
    response = edge.post(URL, data="{not json", content_type="application/json")
    assert response.status_code == 400
    check_response(response)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "'feedback' is a required property"),
        ({"feedback": []}, "$.feedback"),
        ({"feedback": [{"card": UNKNOWN_CARD, "outcomeTimestamp": "2026-06-01T12:05:00Z"}]}, "'outcome'"),
        ({"feedback": [{**overridden(UNKNOWN_CARD), "outcome": "ignored"}]}, "$.feedback[0].outcome"),
        ({"feedback": [{**overridden(UNKNOWN_CARD), "card": "Jane-Roe-card"}]}, "$.feedback[0].card"),
        ({"feedback": [{**overridden(UNKNOWN_CARD), "outcomeTimestamp": "1 June 2026"}]}, "outcomeTimestamp"),
        ({"feedback": [{**overridden(UNKNOWN_CARD), "outcomeTimestamp": "2026-06-01T12:05:00"}]}, "outcomeTimestamp"),
        (
            {"feedback": [{"card": UNKNOWN_CARD, "outcome": "accepted", "outcomeTimestamp": "2026-06-01T12:05:00Z"}]},
            "acceptedSuggestions",
        ),
        ({"feedback": [{**overridden(UNKNOWN_CARD), "overrideReason": {}}]}, "$.feedback[0].overrideReason"),
    ],
)
def test_schema_violations_are_400_naming_the_field_never_the_value(edge, body, fragment):
    response = edge.post(URL, json=body)
    assert response.status_code == 400
    message = check_response(response)["issue"][0]["diagnostics"]
    assert fragment in message
    assert "Jane-Roe" not in message and "1 June" not in message


def test_an_impossible_date_is_400():
    with pytest.raises(SchemaViolationError, match="calendar"):
        parse_timestamp("2026-02-30T12:00:00Z")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-06-01T12:05:00Z", datetime(2026, 6, 1, 12, 5, tzinfo=UTC)),
        ("2026-06-01t14:05:00+02:00", datetime(2026, 6, 1, 12, 5, tzinfo=UTC)),
        ("2026-06-01T07:05:00.123456789-05:00", datetime(2026, 6, 1, 12, 5, 0, 123456, tzinfo=UTC)),
        ("2016-12-31T23:59:60Z", datetime(2016, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    ],
)
def test_outcome_timestamps_are_read_as_utc_instants(text, expected):
    assert parse_timestamp(text) == expected


def test_unreachable_database_is_503_and_the_comment_is_never_logged(caplog, capfd):
    caplog.set_level(logging.DEBUG)
    app = make_app(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none", database_timeout=1.0)
    try:
        response = app.test_client().post(URL, json={"feedback": [overridden(UNKNOWN_CARD)]})
        assert response.status_code == 503
        assert check_response(response)["issue"][0]["code"] == "transient"
    finally:
        close_app(app)
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records) + "".join(capfd.readouterr())
    assert "feedback not stored" in logged
    assert "Jane Roe" not in logged and "99-1234" not in logged


def test_the_comment_is_never_logged_when_stored(app, client, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    assert post(client, {"feedback": [overridden(UNKNOWN_CARD)]})[0] == 200
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records) + "".join(capfd.readouterr())
    assert "feedback stored" in logged
    assert "Jane Roe" not in logged and "99-1234" not in logged
