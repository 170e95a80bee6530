"""Honest records: the audit trail and metrics count hook calls only, feedback stores only moments a
clinician can have acted at, and the governance tools never make a database by accident."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select

from cds_service.cli import main
from cds_service.storage.schema import feedback as feedback_table
from cds_service.storage.schema import invocation as invocation_table
from tests.conftest import SIGN, make_app

FEEDBACK = f"/cds-services/{SIGN.id}/feedback"
CARD = "0f2b7c1e-0000-4000-8000-000000000077"
SANDBOX = "https://sandbox.cds-hooks.org"


def _count(app, table) -> int:
    app.extensions["ivig_cds.audit"].flush(10)
    with app.extensions["ivig_cds.storage"].begin() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def test_cors_preflights_are_neither_audited_nor_counted_as_hook_calls():
    registry = CollectorRegistry()
    app = make_app(cors_origins=(SANDBOX,), metrics_registry=registry)
    client = app.test_client()
    for _ in range(3):
        response = client.options(
            f"/cds-services/{SIGN.id}",
            headers={"Origin": SANDBOX, "Access-Control-Request-Method": "POST"},
        )
        assert response.status_code == 204
    assert client.post(f"/cds-services/{SIGN.id}", json={}).status_code == 400  # one real (bad) hook call
    assert _count(app, invocation_table) == 1
    samples = [s for m in registry.collect() if m.name == "ivig_cds_hook_requests" for s in m.samples]
    assert sum(s.value for s in samples if s.name.endswith("_total")) == 1


def _item(when: str) -> dict:
    return {"card": CARD, "outcome": "overridden", "outcomeTimestamp": when}


@pytest.mark.parametrize(
    "when",
    [
        "0001-01-01T00:01:00+02:00",  # an OverflowError (500) before
        "0377-05-06T10:00:00Z",  # stored before
        "0529-12-31T23:59:59-05:00",
        "2014-12-31T23:59:59Z",
        "9999-12-31T23:59:59-14:00",
    ],
)
def test_a_moment_no_clinician_can_have_acted_at_is_a_400_and_no_row(when):
    app = make_app()
    response = app.test_client().post(FEEDBACK, json={"feedback": [_item(when)]})
    assert response.status_code == 400
    assert "$.feedback[0].outcomeTimestamp" in response.get_json()["issue"][0]["diagnostics"]
    assert _count(app, feedback_table) == 0


def test_the_future_is_refused_beyond_five_minutes_of_clock_drift():
    app = make_app()
    client = app.test_client()
    soon = (datetime.now(UTC) + timedelta(minutes=4)).isoformat()
    later = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    assert client.post(FEEDBACK, json={"feedback": [_item(soon)]}).status_code == 200
    assert client.post(FEEDBACK, json={"feedback": [_item(later)]}).status_code == 400
    assert _count(app, feedback_table) == 1


TIMESTAMPS = st.builds(
    lambda y, mo, d, h, mi, s, zone: f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{zone}",
    st.integers(0, 9999),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 24),
    st.integers(0, 60),
    st.integers(0, 60),
    st.sampled_from(["Z", "+00:00", "+02:00", "-05:00", "+14:00", "-23:59", "+23:59"]),
)
FUZZED = make_app()


@settings(max_examples=150, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(when=TIMESTAMPS)
def test_any_timestamp_is_answered_200_or_400_and_only_plausible_ones_are_stored(when):
    before = _count(FUZZED, feedback_table)
    response = FUZZED.test_client().post(FEEDBACK, json={"feedback": [_item(when)]})
    assert response.status_code in (200, 400), when
    stored = _count(FUZZED, feedback_table) - before
    if response.status_code == 400:
        assert stored == 0
    else:
        moment = datetime.fromisoformat(when.replace("Z", "+00:00").replace("T24:", "T23:"))
        assert datetime(2015, 1, 1, tzinfo=UTC) <= moment.astimezone(UTC) <= datetime.now(UTC) + timedelta(minutes=5)


def test_report_and_db_upgrade_name_the_database_and_never_make_one_by_accident(tmp_path, capsys):
    mistyped = tmp_path / "no-such-folder" / "ivig-cds.db"
    url = f"sqlite:///{mistyped}"
    assert main(["report", "--database-url", url]) == 2
    err = capsys.readouterr().err
    assert f"database sqlite:///{mistyped}" in err and "no database file" in err
    assert main(["db", "upgrade", "--database-url", url]) == 2
    assert "--create" in capsys.readouterr().err
    assert not mistyped.parent.exists(), "no folder, no file"
    assert main(["db", "upgrade", "--database-url", url, "--create"]) == 2
    assert "does not exist" in capsys.readouterr().err and not mistyped.parent.exists()

    fresh = tmp_path / "ivig-cds.db"
    assert main(["db", "upgrade", "--database-url", f"sqlite:///{fresh}", "--create"]) == 0
    out = capsys.readouterr()
    assert f"sqlite:///{fresh}: schema at version" in out.out and fresh.exists()
    assert main(["report", "--database-url", f"sqlite:///{fresh}"]) == 0
    assert f"database sqlite:///{fresh}" in capsys.readouterr().err
