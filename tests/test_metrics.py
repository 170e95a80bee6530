"""`GET /metrics`: the counters move by what was done, labels stay within fixed sets, access is as configured,
and under gunicorn every worker's calls are added up whichever worker answers the scrape."""

from __future__ import annotations

import ast
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
import responses
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

import cds_service
import fhir_fixtures
from cds_service import auth, metrics, patient_data
from cds_service.config import ConfigError
from hooks.facts import DataKind
from tests.auth_tokens import JWKS_URL, bearer, ehr_jwks, jwt_app, token
from tests.conftest import SELECT, SIGN, check_response, make_app
from tests.fhir_mock import BASE, serve_scenario
from tests.processes import running_service

P01 = fhir_fixtures.load("P01")
INVOKE = f"/cds-services/{SIGN.id}"
METRICS_TOKEN = "metrics-token-for-tests-0123456789"


def metered_app(**config):
    """An app whose metrics live in a registry of its own, returned alongside it."""
    registry = CollectorRegistry()
    return make_app(metrics_registry=registry, **config), registry


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def samples(text: str) -> list:
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


# --- what is counted -------------------------------------------------------------------------------


def test_a_hook_call_counts_the_request_its_duration_and_each_card():
    app, registry = metered_app()
    response = app.test_client().post(INVOKE, json=P01.prefetch_request(SIGN.prefetch))
    body = check_response(response)
    assert response.status_code == 200 and body["cards"]

    assert value(registry, "ivig_cds_hook_requests_total", service=SIGN.id, status="200") == 1
    assert value(registry, "ivig_cds_hook_duration_seconds_count", service=SIGN.id) == 1
    assert 0 < value(registry, "ivig_cds_hook_duration_seconds_sum", service=SIGN.id) < 2
    expected: dict[tuple[str, str], int] = {}
    for card in body["cards"]:
        key = (card["source"]["topic"]["code"], card["indicator"])
        expected[key] = expected.get(key, 0) + 1
    for (rule, indicator), count in expected.items():
        assert value(registry, "ivig_cds_cards_total", rule=rule, indicator=indicator) == count
    counted = sum(
        s.value
        for s in samples(app.test_client().get("/metrics").get_data(as_text=True))
        if s.name == "ivig_cds_cards_total"
    )
    assert counted == len(body["cards"])


def test_errors_are_counted_by_status_and_services_apart():
    app, registry = metered_app()
    client = app.test_client()
    client.post(INVOKE, data="{not json", content_type="application/json")
    client.post(f"/cds-services/{SELECT.id}", json=P01.prefetch_request(SELECT.prefetch, hook="order-select"))
    client.get("/cds-services")  # discovery is not a hook call
    assert value(registry, "ivig_cds_hook_requests_total", service=SIGN.id, status="400") == 1
    assert value(registry, "ivig_cds_hook_requests_total", service=SELECT.id, status="200") == 1
    assert (
        sum(
            s.value
            for s in samples(client.get("/metrics").get_data(as_text=True))
            if s.name == "ivig_cds_hook_requests_total"
        )
        == 2
    )


def test_unknown_service_ids_share_one_label():
    app, registry = metered_app()
    client = app.test_client()
    for made_up in ("nope", "x" * 200, "ivig-platelets-order-sign-2"):
        assert client.post(f"/cds-services/{made_up}", json={}).status_code == 404
    assert value(registry, "ivig_cds_hook_requests_total", service="unknown", status="404") == 3
    assert value(registry, "ivig_cds_hook_duration_seconds_count", service="unknown") == 3
    text = client.get("/metrics").get_data(as_text=True)
    assert "nope" not in text and "xxxx" not in text and "order-sign-2" not in text


def fetching_app(**config):
    return metered_app(fhir_allowlist=[BASE], **config)


def failing(prefix, failure):
    """A serve_scenario `fail` callback: queries starting with `prefix` raise or answer `failure`."""

    def fail(path):
        if not path.startswith(prefix):
            return None
        if isinstance(failure, Exception):
            raise failure
        return failure

    return fail


@pytest.mark.parametrize(
    ("failure", "result"),
    [
        (requests.ReadTimeout(), "timeout"),
        (requests.ConnectionError(), "unreachable"),
        ((500, {"resourceType": "OperationOutcome"}), "http-error"),
        (
            (
                200,
                {
                    "resourceType": "Bundle",
                    "type": "searchset",
                    "entry": [{"resource": {"resourceType": "Condition", "subject": 5}}],
                },
            ),
            "ok",  # read: an invalid resource in it is the tolerant reader's business, counted as a repair
        ),
        ((200, ["not", "a", "resource"]), "invalid"),
        ((404, {"resourceType": "OperationOutcome"}), "not-found"),
    ],
    ids=["timeout", "unreachable", "http-error", "invalid-fhir", "not-fhir", "not-found"],
)
def test_each_fhir_read_is_counted_by_kind_and_result(failure, result):
    app, registry = fetching_app()
    with responses.RequestsMock() as rsps:
        serve_scenario(rsps, P01, fail=failing("Condition", failure))
        response = app.test_client().post(INVOKE, json=P01.fetch_request(BASE))
    assert response.status_code == 200
    assert value(registry, "ivig_cds_fhir_fetch_total", kind="conditions", result=result) == 1
    others = [kind for kind in SIGN.prefetch if kind != "conditions"]
    for kind in others:
        assert value(registry, "ivig_cds_fhir_fetch_total", kind=kind, result="ok") == 1, kind
    assert value(registry, "ivig_cds_hook_requests_total", service=SIGN.id, status="200") == 1


def test_a_fhir_server_off_the_allowlist_counts_every_key_not_allowed():
    app, registry = fetching_app()
    with responses.RequestsMock(assert_all_requests_are_fired=False):
        response = app.test_client().post(INVOKE, json=P01.fetch_request("https://evil.example.net/fhir"))
    assert response.status_code == 403
    for kind in SIGN.prefetch:
        assert value(registry, "ivig_cds_fhir_fetch_total", kind=kind, result="not-allowed") == 1


def test_fetches_of_another_app_are_not_counted_here():
    app, registry = fetching_app()
    other, other_registry = fetching_app()
    with responses.RequestsMock() as rsps:
        serve_scenario(rsps, P01)
        assert other.test_client().post(INVOKE, json=P01.fetch_request(BASE)).status_code == 200
    assert value(other_registry, "ivig_cds_fhir_fetch_total", kind="patient", result="ok") == 1
    assert value(registry, "ivig_cds_fhir_fetch_total", kind="patient", result="ok") == 0
    assert app  # kept alive: its receivers are connected weakly


def test_every_fetch_failure_maps_to_a_fixed_word():
    from concurrent.futures import TimeoutError as FutureTimeout

    from cds_service import fhir_client as fc

    errors = [
        fc.FhirTimeoutError("t"),
        FutureTimeout(),
        fc.FhirUnreachableError("u"),
        fc.FhirHttpError("h", 500),
        fc.FhirResponseError("r"),
        fc.FhirServerNotAllowedError("n"),
        fc.FhirError("base"),
    ]
    words = [patient_data.fetch_result(error) for error in errors]
    assert words == ["timeout", "timeout", "unreachable", "http-error", "invalid", "not-allowed", "unreachable"]
    assert set(words) <= set(patient_data.FETCH_RESULTS)


@pytest.fixture
def jwks():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(JWKS_URL, json=ehr_jwks())
        yield mock


def test_refused_tokens_are_counted_by_reason(jwks):
    registry = CollectorRegistry()
    app = jwt_app(metrics_registry=registry)
    client = app.test_client()
    body = P01.prefetch_request(SIGN.prefetch)
    assert client.post(INVOKE, json=body).status_code == 401
    assert client.post(INVOKE, json=body, headers=bearer(token(INVOKE, now=time.time() - 3600))).status_code == 401
    assert client.get("/cds-services", headers={"Authorization": "Basic abc"}).status_code == 401
    assert client.post(INVOKE, json=body, headers=bearer(token(INVOKE))).status_code == 200

    assert value(registry, "ivig_cds_auth_rejections_total", reason="missing") == 1
    assert value(registry, "ivig_cds_auth_rejections_total", reason="expired") == 1
    assert value(registry, "ivig_cds_auth_rejections_total", reason="not-bearer") == 1
    assert sum(value(registry, "ivig_cds_auth_rejections_total", reason=r) for r in metrics.AUTH_REASONS) == 3
    assert value(registry, "ivig_cds_hook_requests_total", service=SIGN.id, status="401") == 2
    assert value(registry, "ivig_cds_hook_requests_total", service=SIGN.id, status="200") == 1


def test_an_unforeseen_refusal_reason_is_labelled_other():
    app, registry = metered_app()
    auth.token_refused.send(app, reason="a-reason-nobody-listed")
    assert value(registry, "ivig_cds_auth_rejections_total", reason="other") == 1


def _refusal_reasons_in_jwt_auth() -> set[str]:
    """Every literal reason: `TokenRejectedError("...")` calls, `reason = "..."` class attributes, decode map."""
    tree = ast.parse((Path(cds_service.__file__).parent / "jwt_auth.py").read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "TokenRejectedError" and node.args:
            argument = node.args[0]
            if isinstance(argument, ast.Call) and getattr(argument.func, "id", "") == "_reason_of":
                continue  # the decode map below, and its fallback "bad-claim"
            found.add(argument.value if isinstance(argument, ast.Constant) else "(computed)")
        elif isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["reason"]:
            found.add(node.value.value if isinstance(node.value, ast.Constant) else "(computed)")
    from cds_service.jwt_auth import _DECODE_REASONS

    return found | {reason for _, reason in _DECODE_REASONS}


def test_the_list_of_refusal_reasons_covers_every_reason_the_verifier_gives():
    reasons = _refusal_reasons_in_jwt_auth()
    assert {"missing", "expired", "replayed", "jwks-unavailable", "invalid"} <= reasons
    assert reasons <= metrics.AUTH_REASONS, reasons - metrics.AUTH_REASONS


def test_dropped_audit_rows_are_counted(monkeypatch):
    app, registry = metered_app(audit_queue_size=1)
    writer = app.extensions["ivig_cds.audit"]
    monkeypatch.setattr(writer, "_ensure_started", lambda: None)  # no writer thread: the queue stays full
    client = app.test_client()
    for _ in range(3):
        client.post("/cds-services/nope", json={})
    assert writer.dropped == 2
    assert value(registry, "ivig_cds_audit_dropped_total") == 2


def test_feedback_is_counted_by_outcome_after_it_is_stored():
    app, registry = metered_app()
    client = app.test_client()
    cards = client.post(INVOKE, json=P01.prefetch_request(SIGN.prefetch)).get_json()["cards"]
    items = [
        {
            "card": cards[0]["uuid"],
            "outcome": "overridden",
            "outcomeTimestamp": "2026-06-01T12:01:00Z",
            "overrideReason": {"reason": cards[0]["overrideReasons"][0]},
        },
        {
            "card": cards[1]["uuid"],
            "outcome": "overridden",
            "outcomeTimestamp": "2026-06-01T12:01:00Z",
            "overrideReason": {"userComment": "not now"},
        },
    ]
    assert client.post(f"{INVOKE}/feedback", json={"feedback": items}).status_code == 200
    assert client.post(f"{INVOKE}/feedback", json={"feedback": [{"card": "x"}]}).status_code == 400
    assert value(registry, "ivig_cds_feedback_total", outcome="overridden") == 2
    assert value(registry, "ivig_cds_feedback_total", outcome="accepted") == 0


def test_a_failing_metric_never_costs_the_answer(monkeypatch, caplog):
    app, _registry = metered_app()
    state = app.extensions[metrics.EXTENSION]

    class Broken:
        def labels(self, **_labels):
            raise OSError("disk full")

    monkeypatch.setattr(state, "hook_requests", Broken())
    monkeypatch.setattr(state, "cards", Broken())
    response = app.test_client().post(INVOKE, json=P01.prefetch_request(SIGN.prefetch))
    assert response.status_code == 200 and check_response(response)["cards"]
    assert "metric not recorded" in caplog.text and "disk full" not in caplog.text


# --- nothing from a request reaches a label ---------------------------------------------------------


def test_no_patient_id_token_or_request_value_reaches_the_metrics():
    marker = "zq7leak"
    request = json.loads(json.dumps(P01.prefetch_request(SIGN.prefetch)).replace("pat-p01", f"{marker}-patient"))
    assert request["context"]["patientId"] == f"{marker}-patient"
    app, _registry = fetching_app()
    client = app.test_client()
    with responses.RequestsMock() as rsps:
        serve_scenario(rsps, P01)
        fetching = P01.fetch_request(BASE, token=f"{marker}-fhir-token")
        assert client.post(INVOKE, json=fetching).status_code == 200
    assert client.post(INVOKE, json=request).status_code == 200
    assert client.post(f"/cds-services/{marker}-service", json=request).status_code == 404
    client.post(INVOKE, data=marker, content_type="application/json", headers={"X-Request-Id": marker})

    text = client.get("/metrics").get_data(as_text=True)
    assert marker not in text
    allowed = {
        "service": {SIGN.id, SELECT.id, "unknown"},
        "status": {str(status) for status in range(100, 600)},
        "rule": set(metrics.RULE_IDS) | {"other"},
        "indicator": set(metrics.INDICATORS) | {"other"},
        "kind": {kind.value for kind in DataKind} | {"other"},
        "result": set(patient_data.FETCH_RESULTS) | {"other"},
        "reason": set(metrics.AUTH_REASONS) | {"other"},
    }
    for sample in samples(text):
        if sample.name.startswith("ivig_cds_"):
            for name, label in sample.labels.items():
                if name != "le":
                    assert label in allowed[name], (sample.name, name, label)


# --- access ------------------------------------------------------------------------------------------


def test_metrics_are_open_by_default_and_in_the_prometheus_text_format():
    app, _registry = metered_app()
    response = app.test_client().get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert any(
        f.name == "ivig_cds_hook_requests" for f in text_string_to_metric_families(response.get_data(as_text=True))
    )


def test_the_default_registry_of_an_app_has_the_process_and_platform_collectors():
    text = make_app().test_client().get("/metrics").get_data(as_text=True)
    names = {family.name for family in text_string_to_metric_families(text)}
    assert {"process_resident_memory_bytes", "python_info", "ivig_cds_hook_duration_seconds"} <= names


def test_openmetrics_is_served_when_asked_for():
    app, _registry = metered_app()
    response = app.test_client().get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.status_code == 200 and response.mimetype == "application/openmetrics-text"
    assert response.get_data(as_text=True).rstrip().endswith("# EOF")


def test_the_metrics_token_is_required_when_set():
    app, _registry = metered_app(metrics_token=METRICS_TOKEN)
    client = app.test_client()
    for headers in (
        {},
        bearer("wrong-token-wrong-token"),
        {"Authorization": METRICS_TOKEN},
        bearer(METRICS_TOKEN + "x"),
        bearer("é" * 20),
    ):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 401, headers
        assert check_response(refused)["issue"][0]["code"] == "login"
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert METRICS_TOKEN not in refused.get_data(as_text=True)
    assert client.get("/metrics", headers=bearer(METRICS_TOKEN)).status_code == 200
    assert client.get("/metrics", headers={"Authorization": f"bearer  {METRICS_TOKEN} "}).status_code == 200
    # the metrics token opens /metrics only, and the CDS client JWT guard does not apply to /metrics
    assert client.get("/healthz").status_code == 200


def test_the_metrics_token_is_not_a_cds_client_credential(jwks):
    app = jwt_app(metrics_token=METRICS_TOKEN)
    client = app.test_client()
    assert client.get("/cds-services", headers=bearer(METRICS_TOKEN)).status_code == 401
    assert client.get("/metrics", headers=bearer(token("/metrics"))).status_code == 401
    assert client.get("/metrics", headers=bearer(METRICS_TOKEN)).status_code == 200


@pytest.mark.parametrize("bad", ["short", "sixteen chars   with spaces", "ünïcödé-ünïcödé-ünïcödé"])
def test_a_weak_or_unsendable_metrics_token_stops_the_service(bad):
    with pytest.raises(ConfigError, match="METRICS_TOKEN"):
        make_app(metrics_token=bad)


def test_metrics_can_be_switched_off():
    for app in (make_app(metrics=False), make_app(environ={"IVIG_CDS_METRICS": "false"})):
        response = app.test_client().get("/metrics")
        assert response.status_code == 404
        check_response(response)
        assert metrics.EXTENSION not in app.extensions
        assert app.test_client().post(INVOKE, json=P01.prefetch_request(SIGN.prefetch)).status_code == 200


def test_metrics_settings_come_from_the_environment():
    app = make_app(environ={"IVIG_CDS_METRICS_TOKEN": METRICS_TOKEN})
    assert app.test_client().get("/metrics").status_code == 401
    assert METRICS_TOKEN not in repr(app.config["IVIG_CDS"])


# --- multiprocess mode -----------------------------------------------------------------------------


def test_an_operators_directory_is_kept_but_emptied_of_old_counts(tmp_path, monkeypatch):
    directory = tmp_path / "prom"
    directory.mkdir()
    (directory / "counter_1.db").write_bytes(b"old")
    (directory / "notes.txt").write_text("kept")
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(directory))
    with metrics.multiprocess_directory() as path:
        assert path == directory
        assert not list(directory.glob("*.db")) and (directory / "notes.txt").exists()
    assert directory.is_dir() and os.environ[metrics.MULTIPROC_ENV] == str(directory)


def test_without_one_a_private_directory_lives_as_long_as_the_server(tmp_path, monkeypatch):
    monkeypatch.delenv(metrics.MULTIPROC_ENV, raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    with metrics.multiprocess_directory() as path:
        assert path is not None and path.parent == tmp_path and path.name.startswith("ivig-cds-metrics-")
        assert os.environ[metrics.MULTIPROC_ENV] == str(path)
        assert oct(path.stat().st_mode & 0o777) == oct(0o700)
    assert not path.exists() and metrics.MULTIPROC_ENV not in os.environ
    with metrics.multiprocess_directory(enabled=False) as nothing:
        assert nothing is None and metrics.MULTIPROC_ENV not in os.environ


def test_child_exit_removes_the_dead_workers_live_gauge_files(tmp_path, monkeypatch):
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path))
    (tmp_path / "gauge_livesum_4242.db").write_bytes(b"")
    (tmp_path / "counter_4242.db").write_bytes(b"")
    metrics.child_exit(None, SimpleNamespace(pid=4242))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_4242.db"]


@pytest.mark.integration
def test_gunicorn_workers_are_added_up_whichever_worker_answers(tmp_path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {k: v for k, v in os.environ.items() if k != metrics.MULTIPROC_ENV}
    env.update(IVIG_CDS_AUTH="off", TMPDIR=str(temp), IVIG_CDS_DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite'}")
    body = json.dumps(P01.prefetch_request(SIGN.prefetch))

    def call(index: int) -> int:
        path = f"/cds-services/{SIGN.id}" if index % 4 else "/cds-services/no-such-service"
        response = requests.post(base + path, data=body, headers={"Content-Type": "application/json"}, timeout=10)
        return response.status_code

    with running_service(tmp_path, env, cwd=tmp_path, workers=2) as base:
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(call, range(24)))
        assert statuses.count(200) == 18 and statuses.count(404) == 6
        directories = list(temp.glob("ivig-cds-metrics-*"))
        assert len(directories) == 1, "serve makes one private metrics directory"
        for _ in range(6):  # each scrape may reach either worker: every one must see all 24 calls
            text = requests.get(f"{base}/metrics", timeout=5).text
            totals = {
                tuple(sorted(s.labels.items())): s.value
                for s in samples(text)
                if s.name == "ivig_cds_hook_requests_total"
            }
            assert sum(totals.values()) == 24, totals
            assert totals[(("service", SIGN.id), ("status", "200"))] == 18
            assert totals[(("service", "unknown"), ("status", "404"))] == 6
        writers = {p.stem.split("_")[-1] for p in directories[0].glob("histogram_*.db")}
        assert 1 <= len(writers) <= 2
    assert not list(temp.glob("ivig-cds-metrics-*")), "the private metrics directory is removed at shutdown"
