"""`ivig-cds serve`: address, workers and threads from the environment; no gunicorn control socket."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import requests
from gunicorn.config import Config

from cds_service import server
from cds_service.config import ConfigError, load_settings
from tests.processes import free_port, tool, wait_ready


def options(environ: dict[str, str], **flags):
    return server.serve_options(load_settings(environ), environ, **flags)


def test_flags_win_over_ivig_cds_variables_which_win_over_web_concurrency():
    assert (options({}).host, options({}).port, options({}).workers, options({}).threads) == ("127.0.0.1", 8080, 2, 4)
    assert options({"WEB_CONCURRENCY": "5"}).workers == 5
    env = {"WEB_CONCURRENCY": "5", "IVIG_CDS_WORKERS": "3", "IVIG_CDS_THREADS": "8", "IVIG_CDS_PORT": "9000"}
    assert (options(env).workers, options(env).threads, options(env).port) == (3, 8, 9000)
    assert options(env, workers=1, threads=2, port=7000).bind == "127.0.0.1:7000"
    assert options({"IVIG_CDS_HOST": "::"}).bind == "[::]:8080"


@pytest.mark.parametrize(
    ("environ", "fragment"),
    [
        ({"IVIG_CDS_PORT": "0"}, "PORT"),
        ({"IVIG_CDS_PORT": "http"}, "IVIG_CDS_PORT"),
        ({"IVIG_CDS_THREADS": "0"}, "THREADS"),
        ({"WEB_CONCURRENCY": "many"}, "WEB_CONCURRENCY"),
        ({"GUNICORN_CMD_ARGS": "--workers 3"}, "IVIG_CDS_WORKERS"),
        ({"GUNICORN_CMD_ARGS": "-b 0.0.0.0:9"}, "IVIG_CDS_HOST and IVIG_CDS_PORT"),
        ({"GUNICORN_CMD_ARGS": "--worker-class sync"}, "gthread"),
        ({"GUNICORN_CMD_ARGS": "--graceful-timeout 90"}, "grace"),
        ({"GUNICORN_CMD_ARGS": "--no-such-option"}, "cannot be parsed"),
    ],
)
def test_conflicting_or_bad_serving_settings_stop_with_a_message(environ, fragment):
    with pytest.raises(ConfigError, match=fragment):
        options(environ)


def test_gunicorn_cmd_args_tune_gunicorn_and_the_control_socket_is_off():
    cfg = Config()
    server.configure(cfg, options({"GUNICORN_CMD_ARGS": "--keep-alive 7 --max-requests 100", "IVIG_CDS_WORKERS": "3"}))
    assert (cfg.keepalive, cfg.max_requests, cfg.workers, cfg.threads) == (7, 100, 3, 4)
    assert cfg.worker_class_str == "gthread" and cfg.graceful_timeout == server.GRACEFUL_TIMEOUT
    if "control_socket_disable" in cfg.settings:
        assert cfg.control_socket_disable is True


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.integration
def test_serve_takes_port_and_workers_from_the_environment_and_writes_nothing_in_home(tmp_path):
    """gunicorn 23+ creates $HOME/.gunicorn/gunicorn.ctl (or one under $XDG_RUNTIME_DIR) unless told not to."""
    home = tmp_path / "home"
    home.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVIG_CDS_") and k != "XDG_RUNTIME_DIR"}
    env.update(
        HOME=str(home),
        IVIG_CDS_AUTH="off",
        IVIG_CDS_PORT=str(port),
        IVIG_CDS_WORKERS="3",
        IVIG_CDS_THREADS="2",
        IVIG_CDS_DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite'}",
        GUNICORN_CMD_ARGS="--keep-alive 3",
    )
    with (tmp_path / "log").open("wb") as log:
        process = subprocess.Popen([tool("ivig-cds"), "serve"], env=env, stderr=log, stdout=subprocess.DEVNULL)
        try:
            assert wait_ready(process, f"http://127.0.0.1:{port}/healthz"), (tmp_path / "log").read_text()[-2000:]
            deadline = time.monotonic() + 10
            while len(_children(process.pid)) < 3 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert len(_children(process.pid)) == 3
            assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
            assert list(home.iterdir()) == []  # checked while running: gunicorn removes its socket at exit
        finally:
            process.terminate()
            process.wait(timeout=30)
    assert process.returncode == 0
    assert list(home.iterdir()) == []
    assert "control socket" not in (tmp_path / "log").read_text().lower()


def test_serve_refuses_a_second_place_for_the_port(tmp_path):
    env = dict(os.environ, GUNICORN_CMD_ARGS="--bind 0.0.0.0:9999")
    result = subprocess.run([tool("ivig-cds"), "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "IVIG_CDS_PORT" in result.stderr
