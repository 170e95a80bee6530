"""Several `ivig-cds serve` replicas behind a real HAProxy, sharing PostgreSQL and Redis, on one
machine: for the scale-out test and benchmark.

The load balancer runs the project's own `deploy/haproxy.cfg` (the one compose uses), with the
replicas' local addresses in place of its DNS server template. Each replica is a process group
(gunicorn master and workers), so `kill` takes the whole replica down at once, as a crashed
container or node would. The replicas verify real JWTs against an HTTPS JWKS (tests/jwks_server.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.auth_tokens import PUBLIC_BASE
from tests.conftest import reachable_postgres
from tests.dockerfile import ROOT
from tests.jwks_server import serving_jwks
from tests.processes import free_port, tool, wait_ready

REDIS = ("127.0.0.1", 6379)


def missing() -> tuple[str | None, str | None]:
    """(PostgreSQL conninfo, why the cluster cannot run here or None)."""
    if shutil.which("haproxy") is None:
        return None, "haproxy is not installed (apt-get install haproxy; .ci/run does)"
    try:
        with socket.create_connection(REDIS, timeout=0.5):
            pass
    except OSError:
        return None, "no Redis at 127.0.0.1:6379"
    conninfo, _ = reachable_postgres()
    if conninfo is None:
        return None, "no PostgreSQL at 127.0.0.1:5432 (set IVIG_CDS_TEST_POSTGRES_URL)"
    return conninfo, None


@dataclass
class Replica:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL to the master and every worker at once: nothing is drained."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 40) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=timeout)


@dataclass
class Cluster:
    lb: str
    replicas: list[Replica]
    database_url: str
    workdir: Path
    lb_process: subprocess.Popen[bytes] | None = None
    schema: str = ""
    killed: set[str] = field(default_factory=set)

    def live(self) -> list[Replica]:
        return [r for r in self.replicas if r.name not in self.killed]

    def kill(self, replica: Replica) -> None:
        self.killed.add(replica.name)
        replica.kill()

    def stop_replicas(self) -> None:
        for replica in self.live():
            replica.stop()


def haproxy_config(lb_port: int, health_port: int, replicas: list[tuple[str, int]]) -> str:
    """deploy/haproxy.cfg with local addresses: its timeouts, retries, checks and balancing as shipped."""
    lines = []
    skipping = False
    for line in (ROOT / "deploy" / "haproxy.cfg").read_text().splitlines():
        if line.startswith("resolvers "):
            skipping = True
            continue
        if skipping and (not line.strip() or line.startswith(" ")):
            if not line.strip():
                skipping = False
            continue
        if line.strip().startswith("server-template "):
            indent = line[: len(line) - len(line.lstrip())]
            lines += [f"{indent}server {name} 127.0.0.1:{port} check" for name, port in replicas]
            continue
        line = line.replace("bind :8080", f"bind 127.0.0.1:{lb_port}")
        line = line.replace("bind 127.0.0.1:8404", f"bind 127.0.0.1:{health_port}")
        lines.append(line)
    return "\n".join(lines) + "\n"


@contextmanager
def running_cluster(workdir: Path, conninfo: str, count: int = 3, workers: int = 2) -> Iterator[Cluster]:
    import psycopg

    schema = f"ivig_cds_scale_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    database_url = conninfo.replace("postgresql://", "postgresql+psycopg://") + f"?options=-csearch_path%3D{schema}"
    with ExitStack() as stack:
        stack.callback(_drop_schema, conninfo, schema)
        jwks = stack.enter_context(serving_jwks(workdir))
        base_env = {k: v for k, v in os.environ.items() if not k.startswith(("IVIG_CDS_", "PROMETHEUS_"))}
        base_env.update(
            IVIG_CDS_DATABASE_URL=database_url,
            IVIG_CDS_JTI_CACHE_URL=f"redis://{REDIS[0]}:{REDIS[1]}/0",
            IVIG_CDS_JWT_ISSUERS=jwks.issuers(),
            IVIG_CDS_PUBLIC_BASE_URL=PUBLIC_BASE,
            IVIG_CDS_AUDIT_KEY="scale-out-test-audit-key-0123456789abcdef",
            IVIG_CDS_WORKERS=str(workers),
            IVIG_CDS_THREADS="4",
            IVIG_CDS_CA_BUNDLE=str(jwks.ca_bundle),
        )
        replicas: list[Replica] = []
        for index in range(count):
            port = free_port()
            log = workdir / f"replica-{index}.log"
            process = subprocess.Popen(
                [tool("ivig-cds"), "serve"],
                env=dict(base_env, IVIG_CDS_PORT=str(port)),
                stdout=subprocess.DEVNULL,
                stderr=stack.enter_context(log.open("wb")),
                start_new_session=True,  # its own process group: killed as one
            )
            replica = Replica(f"r{index}", port, process, log)
            replicas.append(replica)
            stack.callback(_ensure_gone, replica)
        for replica in replicas:
            if not wait_ready(replica.process, f"{replica.url}/readyz", timeout=90):
                raise RuntimeError(f"replica {replica.name} did not start:\n" + replica.log.read_text()[-2000:])
        lb_port, health_port = free_port(), free_port()
        config = workdir / "haproxy.cfg"
        config.write_text(haproxy_config(lb_port, health_port, [(r.name, r.port) for r in replicas]))
        lb_log = workdir / "haproxy.log"
        lb_process = subprocess.Popen(
            [shutil.which("haproxy") or "haproxy", "-f", str(config), "-db"],
            stdout=stack.enter_context(lb_log.open("wb")),
            stderr=subprocess.STDOUT,
        )
        stack.callback(_stop, lb_process)
        cluster = Cluster(f"http://127.0.0.1:{lb_port}", replicas, database_url, workdir, lb_process, schema)
        _wait_all_up(cluster, f"http://127.0.0.1:{health_port}/health")
        yield cluster


def _wait_all_up(cluster: Cluster, health: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(health, timeout=1).status_code == 200:
                # every replica reached through the balancer at least once
                seen = {requests.get(f"{cluster.lb}/readyz", timeout=5).status_code for _ in range(6)}
                if seen == {200}:
                    return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError("the load balancer did not come up")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def _ensure_gone(replica: Replica) -> None:
    try:
        replica.stop(timeout=40)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        with suppress(ProcessLookupError):
            os.killpg(replica.process.pid, signal.SIGKILL)


def _drop_schema(conninfo: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def run_report(database_url: str) -> str:
    return subprocess.run(
        [tool("ivig-cds"), "report", "--format", "json", "--database-url", database_url],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
