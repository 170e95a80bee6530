"""deploy/: the compose file and the Kubernetes manifests are valid against their schemas (offline:
kubernetes-validate and check-jsonschema ship them) and say what a hospital deployment relies on."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from importlib import resources
from pathlib import PurePosixPath

import jsonschema
import kubernetes_validate
import pytest
import yaml

from cds_service.config import load_settings
from cds_service.jwt_auth import parse_issuers
from cds_service.server import GRACEFUL_TIMEOUT
from tests.dockerfile import ROOT

DEPLOY = ROOT / "deploy"
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version() + ".0")


def manifests() -> list[dict]:
    docs = []
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def one(kind: str, name: str | None = None) -> dict:
    (found,) = [d for d in manifests() if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    return found


DEPLOYMENT = one("Deployment")
POD = DEPLOYMENT["spec"]["template"]["spec"]
(CONTAINER,) = POD["containers"]
CONFIG = one("ConfigMap", "ivig-cds-config")["data"]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_is_valid_kubernetes_strictly(version):
    kinds = set()
    for doc in manifests():
        kubernetes_validate.validate(doc, version, strict=True)
        kinds.add(doc["kind"])
    assert kinds >= {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ConfigMap",
        "NetworkPolicy",
    }


def test_the_validator_catches_a_misspelt_field():
    broken = copy.deepcopy(DEPLOYMENT)
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_probes_follow_health_and_readiness_and_the_configured_port():
    assert CONTAINER["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert CONTAINER["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert CONTAINER["startupProbe"]["httpGet"]["path"] == "/healthz"
    (port,) = CONTAINER["ports"]
    assert all(CONTAINER[p]["httpGet"]["port"] == port["name"] for p in ("livenessProbe", "readinessProbe"))
    assert port["containerPort"] == int(CONFIG["IVIG_CDS_PORT"])


def test_pod_is_non_root_read_only_without_capabilities_under_runtime_default_seccomp():
    pod, container = POD["securityContext"], CONTAINER["securityContext"]
    assert pod["runAsNonRoot"] and pod["runAsUser"] != 0 and container["runAsNonRoot"]
    assert pod["seccompProfile"]["type"] == container["seccompProfile"]["type"] == "RuntimeDefault"
    assert container["readOnlyRootFilesystem"] is True and container["allowPrivilegeEscalation"] is False
    assert container["capabilities"]["drop"] == ["ALL"] and "add" not in container["capabilities"]
    assert POD["automountServiceAccountToken"] is False
    tmp = next(m for m in CONTAINER["volumeMounts"] if m["mountPath"] == "/tmp")
    assert "emptyDir" in next(v for v in POD["volumes"] if v["name"] == tmp["name"])


def test_termination_grace_exceeds_pre_stop_plus_the_drain_time():
    pre_stop = int(CONTAINER["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert POD["terminationGracePeriodSeconds"] > pre_stop + GRACEFUL_TIMEOUT


def test_resources_are_requested_and_limited():
    assert set(CONTAINER["resources"]["requests"]) == {"cpu", "memory"}
    assert set(CONTAINER["resources"]["limits"]) == {"cpu", "memory"}


def test_secrets_are_referenced_and_the_settings_are_a_valid_configuration():
    secret_refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in CONTAINER["env"] if "valueFrom" in e}
    assert set(secret_refs) == {"IVIG_CDS_AUDIT_KEY", "IVIG_CDS_DATABASE_URL", "IVIG_CDS_METRICS_TOKEN"}
    assert not any(key.endswith(("KEY", "TOKEN", "DATABASE_URL")) for key in CONFIG)
    stand_ins = {
        "IVIG_CDS_AUDIT_KEY": "k" * 32,
        "IVIG_CDS_METRICS_TOKEN": "t" * 16,
        "IVIG_CDS_DATABASE_URL": "postgresql+psycopg://ivig@db/ivig",
    }
    settings = load_settings({**CONFIG, **stand_ins, "IVIG_CDS_JWT_ISSUERS_FILE": ""})
    assert settings.jti_cache_url and settings.public_base_url and settings.port == 8080


def test_issuers_configmap_is_mounted_where_the_service_reads_it_and_parses():
    issuers = one("ConfigMap", "ivig-cds-issuers")
    mount = next(m for m in CONTAINER["volumeMounts"] if m["name"] == "issuers")
    volume = next(v for v in POD["volumes"] if v["name"] == "issuers")
    assert volume["configMap"]["name"] == issuers["metadata"]["name"]
    path = PurePosixPath(CONFIG["IVIG_CDS_JWT_ISSUERS_FILE"])
    assert str(path.parent) == mount["mountPath"] and path.name in issuers["data"]
    assert parse_issuers(issuers["data"][path.name])


def test_service_hpa_pdb_and_network_policy_select_the_deployment():
    labels = DEPLOYMENT["spec"]["template"]["metadata"]["labels"]
    service = one("Service")
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == CONTAINER["ports"][0]["name"]
    hpa = one("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == DEPLOYMENT["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] >= 2
    pdb = one("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    policy = one("NetworkPolicy")["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    egress_ports = {p["port"] for rule in policy["egress"] for p in rule["ports"]}
    assert egress_ports == {53, 5432, 6379, 443}  # DNS, PostgreSQL, Redis, the EHR (FHIR and JWKS)
    ingress_ports = {p["port"] for rule in policy["ingress"] for p in rule["ports"]}
    assert ingress_ports == {int(CONFIG["IVIG_CDS_PORT"])}


# --- compose --------------------------------------------------------------------------------------

COMPOSE = yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_file_follows_the_compose_specification():
    schema = json.loads(
        resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text()
    )
    jsonschema.validate(COMPOSE, schema)
    broken = copy.deepcopy(COMPOSE)
    broken["services"]["cds"]["stop_grace_periode"] = "30s"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def _seconds(value: str) -> int:
    match = re.fullmatch(r"(\d+)s", value)
    assert match, value
    return int(match.group(1))


def test_compose_runs_two_hardened_replicas_behind_a_load_balancer_with_their_dependencies():
    services = COMPOSE["services"]
    assert set(services) == {"cds", "lb", "postgres", "redis", "fhir"}
    cds = services["cds"]
    assert cds["deploy"]["replicas"] == 2
    assert all("healthcheck" in service for service in services.values())
    assert _seconds(cds["stop_grace_period"]) > GRACEFUL_TIMEOUT
    assert cds["read_only"] is True and cds["cap_drop"] == ["ALL"] and any(t.startswith("/tmp") for t in cds["tmpfs"])
    assert {"postgres", "redis"} <= set(cds["depends_on"])
    env = cds["environment"]
    database = env["IVIG_CDS_DATABASE_URL"]
    assert database.startswith("postgresql+psycopg://") and "@postgres:" in database
    assert env["IVIG_CDS_JTI_CACHE_URL"] == "redis://redis:6379/0"
    assert "sekmet-fhir==" in " ".join(services["fhir"]["command"])


def test_compose_settings_and_mounted_files_are_a_valid_configuration():
    example = dict(
        line.split("=", 1) for line in (DEPLOY / "example.env").read_text().splitlines() if line and line[0] != "#"
    )
    env = {}
    for key, value in COMPOSE["services"]["cds"]["environment"].items():
        env[key] = re.sub(r"\$\{(\w+)(?::[-?][^}]*)?\}", lambda m: example[m.group(1)], str(value))
    env["IVIG_CDS_JWT_ISSUERS_FILE"] = str(DEPLOY / "issuers.json")
    settings = load_settings(env)
    assert settings.audit_key and settings.metrics_token and settings.port == 8080
    for mount in COMPOSE["services"]["cds"]["volumes"] + COMPOSE["services"]["lb"]["volumes"]:
        assert (DEPLOY / mount.split(":")[0]).exists(), mount
    assert parse_issuers((DEPLOY / "issuers.json").read_text())


def test_haproxy_configuration_is_accepted_by_haproxy():
    haproxy = shutil.which("haproxy")
    if haproxy is None:
        if os.environ.get("CI"):
            pytest.fail("CI must check the load balancer's configuration: .ci/run installs haproxy")
        pytest.skip("haproxy is not installed (apt-get install haproxy)")
    # Docker's DNS (127.0.0.11) exists only inside compose's network: check with a local resolver.
    config = (DEPLOY / "haproxy.cfg").read_text().replace("127.0.0.11:53", "127.0.0.1:53")
    result = subprocess.run([haproxy, "-c", "-f", "/dev/stdin"], input=config, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
