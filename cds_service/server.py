"""How `ivig-cds serve` runs gunicorn: address, workers and threads from the environment, and the
settings a container relies on.

Why here and not in a gunicorn config file: the image runs one command, and every knob a deployer
turns is an environment variable, so the same values reach `ivig-cds serve`, the image's health
check and the Kubernetes probes. Where each value comes from, first found wins:

- address: `--host`/`--port`, else `IVIG_CDS_HOST`/`IVIG_CDS_PORT`, else 127.0.0.1:8080;
- workers: `--workers`, else `IVIG_CDS_WORKERS`, else `WEB_CONCURRENCY` (the variable platforms
  such as Heroku and many buildpacks set), else 2;
- threads: `--threads`, else `IVIG_CDS_THREADS`, else 4;
- any other gunicorn setting from `GUNICORN_CMD_ARGS` (gunicorn's own variable, parsed by gunicorn's
  own parser), e.g. `--keep-alive 5 --max-requests 1000`. The settings above, and those the
  service depends on (worker class, hooks, config file, daemon mode, control socket), are refused
  there with a message naming the variable to use instead: two places for one value would let the
  health check probe one port while gunicorn binds another.

Always: gunicorn's control socket is off (gunicorn 23+ otherwise creates `$HOME/.gunicorn/` or
`$XDG_RUNTIME_DIR/gunicorn.ctl`, one socket shared by every instance of a user, and an error on a
read-only root file system); no access log (the app logs requests itself, without patient data);
each worker drains its audit queue before it exits, within `GRACEFUL_TIMEOUT`.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cds_service.config import ConfigError, Settings

#: Seconds a stopping worker is given to finish its calls and drain its audit queue before the
#: master kills it. Container stop grace periods must exceed it (deploy/ and tests check this).
GRACEFUL_TIMEOUT = 20
WORKER_TIMEOUT = 30  # seconds a worker may be silent before the master restarts it
DEFAULT_WORKERS = 2

#: GUNICORN_CMD_ARGS settings the service sets itself, with where each is configured instead.
REFUSED_GUNICORN_SETTINGS = {
    "bind": "IVIG_CDS_HOST and IVIG_CDS_PORT",
    "workers": "IVIG_CDS_WORKERS (or WEB_CONCURRENCY)",
    "threads": "IVIG_CDS_THREADS",
    "worker_class": "nothing: the service runs gthread workers",
    "config": "environment variables (see README, Configuration)",
    "daemon": "nothing: the service runs in the foreground",
    "control_socket": "nothing: the control socket is off",
    "control_socket_disable": "nothing: the control socket is off",
    "graceful_timeout": f"nothing: it is {GRACEFUL_TIMEOUT} s, which the deployment files' grace periods exceed",
    "accesslog": "nothing: the service logs requests itself, without patient data",
    "logger_class": "nothing: gunicorn's lines are written as JSON like the service's",
}


@dataclass(frozen=True)
class ServeOptions:
    host: str
    port: int
    workers: int
    threads: int
    gunicorn: Mapping[str, Any]  # further settings from GUNICORN_CMD_ARGS

    @property
    def bind(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _positive(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < 1:
        raise ConfigError(f"{name} must be at least 1")
    return value


def gunicorn_settings_from(environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings `GUNICORN_CMD_ARGS` names, parsed as gunicorn parses it; refused ones raise."""
    raw = environ.get("GUNICORN_CMD_ARGS", "").strip()
    if not raw:
        return {}
    from gunicorn.config import Config

    try:
        parsed = Config().parser().parse_args(shlex.split(raw))
    except (SystemExit, ValueError):
        raise ConfigError("GUNICORN_CMD_ARGS cannot be parsed as gunicorn options") from None
    values = {k: v for k, v in vars(parsed).items() if v is not None and k != "args"}
    if getattr(parsed, "args", None):
        raise ConfigError("GUNICORN_CMD_ARGS may not name an application: ivig-cds serve runs its own")
    for name in values:
        if name in REFUSED_GUNICORN_SETTINGS:
            raise ConfigError(f"GUNICORN_CMD_ARGS may not set {name!r}; use {REFUSED_GUNICORN_SETTINGS[name]}")
    return values


def serve_options(
    settings: Settings,
    environ: Mapping[str, str],
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
    threads: int | None = None,
) -> ServeOptions:
    """Resolve the serving options: command-line flags, then the environment, then defaults."""
    if workers is None:
        if settings.workers:
            workers = settings.workers
        elif environ.get("WEB_CONCURRENCY", "").strip():
            workers = _positive("WEB_CONCURRENCY", environ["WEB_CONCURRENCY"].strip())
        else:
            workers = DEFAULT_WORKERS
    options = ServeOptions(
        host=host or settings.host,
        port=settings.port if port is None else port,
        workers=workers,
        threads=settings.threads if threads is None else threads,
        gunicorn=gunicorn_settings_from(environ),
    )
    if not 0 < options.port < 65536 or options.workers < 1 or options.threads < 1:
        raise ConfigError("the port must be 1-65535, and workers and threads at least 1")
    return options


def configure(cfg: Any, options: ServeOptions) -> None:
    """Apply the options and the fixed settings to a gunicorn `Config`."""
    from cds_service import metrics
    from cds_service.gunicorn_logging import JsonGunicornLogger

    for name, value in options.gunicorn.items():
        cfg.set(name, value)
    cfg.set("bind", [options.bind])
    cfg.set("workers", options.workers)
    cfg.set("threads", options.threads)
    cfg.set("worker_class", "gthread")
    cfg.set("timeout", options.gunicorn.get("timeout", WORKER_TIMEOUT))
    cfg.set("graceful_timeout", GRACEFUL_TIMEOUT)
    cfg.set("accesslog", None)  # the app logs requests itself, without patient data
    cfg.set("logger_class", JsonGunicornLogger)  # gunicorn's own lines as JSON too
    cfg.set("worker_exit", _drain_audit)  # a worker's queued audit rows are written before it exits
    cfg.set("child_exit", metrics.child_exit)  # prometheus_client's bookkeeping for a gone worker
    if "control_socket_disable" in cfg.settings:  # gunicorn 23+; older versions have no socket
        cfg.set("control_socket_disable", True)


def _drain_audit(_server: Any, _worker: Any) -> None:
    from cds_service.audit import drain_all

    drain_all()


def run(app: Any, options: ServeOptions) -> None:
    """Serve `app` with gunicorn until it is stopped (SIGTERM: graceful, within GRACEFUL_TIMEOUT)."""
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            configure(self.cfg, options)

        def load(self) -> Any:
            return app

    Server().run()
