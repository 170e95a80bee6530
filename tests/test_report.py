"""`ivig-cds report`: per rule, cards shown, accepted, overridden, why, and latency, computed on a
database filled by running public scenarios through the app and posting feedback for some cards."""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

import fhir_fixtures
from cds_service import report
from cds_service.cli import main
from cds_service.storage import Storage, migrations
from cds_service.storage.schema import card as card_table
from cds_service.storage.schema import invocation as invocation_table
from tests.conftest import SIGN, close_app, make_app

SCENARIOS = ("P01", "P02", "P03", "P04", "P05", "P06", "P07", "P08")
REASONS = ("not-applicable", "hematology-advice", None)  # None: a comment and no coded reason
UNKNOWN_CARD = "0f2b7c1e-0000-4000-8000-00000000abcd"


def _feedback(card: dict, index: int) -> dict | None:
    """A fixed plan: every third card accepted (if it has suggestions), every third overridden."""
    when = f"2026-06-01T12:{index % 60:02d}:00Z"
    if index % 3 == 0 and card.get("suggestions"):
        return {
            "card": card["uuid"],
            "outcome": "accepted",
            "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
            "outcomeTimestamp": when,
        }
    if index % 3 in (0, 1):
        code = REASONS[(index // 2) % len(REASONS)]
        reason: dict = {"userComment": "Jane Roe asked to wait"}
        if code:
            reason = {"reason": {"system": "urn:ivig-cds:override-reason", "code": code, "display": code.upper()}}
        return {"card": card["uuid"], "outcome": "overridden", "overrideReason": reason, "outcomeTimestamp": when}
    return None


@pytest.fixture
def filled(database_url):
    """The database after the scenarios and the feedback, plus what the test expects per rule."""
    app = make_app(database_url=database_url)
    client = app.test_client()
    expected: dict[str, Counter] = defaultdict(Counter)
    reasons: dict[str, Counter] = defaultdict(Counter)
    index = 0
    try:
        for sid in SCENARIOS:
            request = fhir_fixtures.load(sid).prefetch_request(SIGN.prefetch)
            for card in client.post(f"/cds-services/{SIGN.id}", json=request).get_json()["cards"]:
                rule = card["source"]["topic"]["code"]
                expected[rule]["shown"] += 1
                item = _feedback(card, index)
                index += 1
                if item is None:
                    continue
                body = {"feedback": [item]}
                assert client.post(f"/cds-services/{SIGN.id}/feedback", json=body).status_code == 200
                assert client.post(f"/cds-services/{SIGN.id}/feedback", json=body).status_code == 200  # a retry
                expected[rule][item["outcome"]] += 1
                if item["outcome"] == "overridden":
                    code = (item["overrideReason"].get("reason") or {}).get("code")
                    reasons[rule][code.upper() if code else report.COMMENT_ONLY] += 1
        unknown = {
            "card": UNKNOWN_CARD,
            "outcome": "overridden",
            "outcomeTimestamp": "2026-06-01T12:00:00Z",
            "overrideReason": {"userComment": "?"},
        }
        assert client.post(f"/cds-services/{SIGN.id}/feedback", json={"feedback": [unknown]}).status_code == 200
    finally:
        close_app(app)  # drains the audit writer
    assert len(expected) >= 3, "the scenarios should exercise several rules"
    return database_url, expected, reasons


@pytest.fixture
def store(filled):
    storage = Storage(filled[0])
    yield storage
    storage.close()


def expected_medians(store: Storage) -> dict[str, float]:
    with store.begin() as conn:
        rows = conn.execute(
            select(card_table.c.rule_id, invocation_table.c.id, invocation_table.c.latency_ms).join(
                invocation_table, card_table.c.invocation_id == invocation_table.c.id
            )
        ).all()
    per_rule: dict[str, dict[str, float]] = defaultdict(dict)
    for rule, invocation_id, latency in rows:
        per_rule[rule][invocation_id] = latency
    return {rule: statistics.median(v.values()) for rule, v in per_rule.items()}


def test_report_counts_what_clinicians_did_per_rule(filled, store):
    _, expected, reasons = filled
    built = report.build(store)
    assert built.invocations == len(SCENARIOS)
    assert built.unknown_card_feedback == 1
    assert {r.rule for r in built.rules} == set(expected)
    medians = expected_medians(store)
    for rule in built.rules:
        counts = expected[rule.rule]
        assert (rule.shown, rule.accepted, rule.overridden) == (
            counts["shown"],
            counts["accepted"],
            counts["overridden"],
        ), rule.rule
        decided = counts["accepted"] + counts["overridden"]
        assert rule.acceptance_rate == (counts["accepted"] / decided if decided else None)
        assert dict(rule.top_override_reasons) == dict(reasons[rule.rule].most_common(report.TOP_REASONS))
        assert rule.median_latency_ms == pytest.approx(medians[rule.rule]) and rule.median_latency_ms > 0


def test_since_limits_the_report_to_recent_invocations(store):
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    assert report.build(store, tomorrow).rules == []
    assert report.build(store, tomorrow).invocations == 0
    yesterday = datetime.now(UTC) - timedelta(days=1)
    assert report.build(store, yesterday).rules == report.build(store).rules


def test_cli_prints_json_csv_and_a_table(filled, store, capsys):
    url = filled[0]
    built = report.build(store)
    assert main(["report", "--database-url", url, "--format", "json"]) == 0
    as_json = json.loads(capsys.readouterr().out)
    assert [r["rule"] for r in as_json["rules"]] == [r.rule for r in built.rules]
    assert as_json["rules"][0]["shown"] == built.rules[0].shown
    assert main(["report", "--database-url", url, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["rule"], int(r["shown"])) for r in rows] == [(r.rule, r.shown) for r in built.rules]
    assert main(["report", "--database-url", url, "--since", "2000-01-01"]) == 0
    table = capsys.readouterr().out
    assert table.startswith(f"{len(SCENARIOS)} hook invocations since 2000-01-01")
    assert all(r.rule in table for r in built.rules) and "acceptance" in table
    assert "Jane Roe" not in table, "comments are never printed"


def test_cli_explains_an_empty_database_and_a_bad_date(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/empty.db"
    (tmp_path / "empty.db").touch()  # an SQLite file that holds nothing of ivig-cds
    assert main(["report", "--database-url", url]) == 2
    assert "no ivig-cds data" in capsys.readouterr().err
    assert main(["db", "upgrade", "--database-url", url]) == 0
    assert f"schema at version {migrations.LATEST}" in capsys.readouterr().out
    assert main(["report", "--database-url", url]) == 0
    assert "(no cards shown)" in capsys.readouterr().out
    assert main(["report", "--database-url", url, "--since", "last tuesday"]) == 2
    assert "--since" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-06-01", datetime(2026, 6, 1, tzinfo=UTC)),
        ("2026-06-01T14:00:00+02:00", datetime(2026, 6, 1, 12, tzinfo=UTC)),
        ("2026-06-01T12:00:00", datetime(2026, 6, 1, 12, tzinfo=UTC)),
    ],
)
def test_since_accepts_dates_and_date_times(text, expected):
    assert report.parse_since(text) == expected
