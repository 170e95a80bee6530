"""Run `ivig-cds serve` the way the image runs it, without a Docker engine.

A private mount namespace gets a new root: an empty tmpfs with the host's /usr, /etc, /opt, /var,
/work and this Python bound read-only, the test's directory bound as `/data`, and `/tmp` either a
fresh tmpfs (`docker run --read-only --tmpfs /tmp`) or read-only too. The root is then remounted
read-only, and the Dockerfile's own command runs there with the Dockerfile's own environment,
under an arbitrary UID whose group is 0 (OpenShift's restricted policy) and HOME=/ (what Docker
gives a UID without a passwd entry). Nothing the host sees changes: the mounts live and die with
the namespace. Needs root and unshare (util-linux); `available()` says whether they work here.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from tests.dockerfile import ROOT, parse

ARBITRARY_UID = 1000770000
HOST_DIRECTORIES = ("usr", "etc", "opt", "var", "work")
VENV_IN_IMAGE = "/opt/venv/bin"


def available() -> str | None:
    """None when a container-like run is possible here, else why not."""
    if os.geteuid() != 0:
        return "needs root (mount namespaces)"
    for tool in ("unshare", "chroot", "setpriv", "mount"):
        if shutil.which(tool) is None:
            return f"{tool} (util-linux/coreutils) is not installed"
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True)
    if probe.returncode != 0:
        return "unshare --mount is not permitted here"
    return None


def image_environment() -> dict[str, str]:
    """The ENV of the image's final stage (and the stages it is built FROM), PATH made local."""
    dockerfile = parse()
    env: dict[str, str] = {}
    for stage in reversed(dockerfile.lineage(dockerfile.final)):
        env.update(stage.env())
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = env["PATH"].replace(VENV_IN_IMAGE, venv_bin).replace("$PATH", "/usr/local/bin:/usr/bin:/bin")
    return env


def image_layout() -> tuple[str, str]:
    """The image's volume (where the test's data directory is mounted) and working directory."""
    final = parse().final
    volumes = [v for i in final.all("VOLUME") for v in (i.exec_form() if i.args.startswith("[") else i.args.split())]
    workdir = final.all("WORKDIR")[-1].args
    return (volumes[0] if volumes else "/data"), workdir


def image_command() -> list[str]:
    command = parse().final.all("CMD")[-1].exec_form()
    return [str(Path(sys.executable).parent / command[0]), *command[1:]]


def _script(new_root: Path, data: Path, writable_tmp: bool, env: Mapping[str, str], command: list[str]) -> str:
    root = shlex.quote(str(new_root))
    lines = ["set -eu", f"root={root}", 'mount -t tmpfs -o mode=0755 tmpfs "$root"']
    for name in ("bin", "sbin", "lib", "lib64"):
        target = Path("/") / name
        if target.is_symlink():
            lines.append(f'ln -s {shlex.quote(os.readlink(target))} "$root/{name}"')
    for name in HOST_DIRECTORIES:
        if (Path("/") / name).is_dir():
            lines += [
                f'mkdir "$root/{name}"',
                f'mount --rbind /{name} "$root/{name}"',
                f'mount -o remount,bind,ro "$root/{name}"',
            ]
    volume, workdir = image_layout()
    lines += [
        'mkdir "$root/proc" "$root/dev" "$root/tmp" "$root/root"',
        f'mkdir -p "$root"{shlex.quote(volume)} "$root"{shlex.quote(workdir)}',
        'chmod 1777 "$root/tmp"',
        'mount -t proc proc "$root/proc"',
        'mount --rbind /dev "$root/dev"',
    ]
    if writable_tmp:
        lines.append('mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"')
    # This Python and the project under test, wherever they are (CI clones anywhere, even in /tmp).
    for path in sorted({Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), ROOT.resolve()}):
        quoted = shlex.quote(str(path))
        lines += [
            f'mkdir -p "$root"{quoted}',
            f'mount --rbind {quoted} "$root"{quoted}',
            f'mount -o remount,bind,ro "$root"{quoted}',
        ]
    lines += [f'mount --bind {shlex.quote(str(data))} "$root"{shlex.quote(volume)}', 'mount -o remount,ro "$root"']
    env_args = " ".join(shlex.quote(f"{k}={v}") for k, v in env.items())
    run = " ".join(shlex.quote(part) for part in command)
    lines.append(
        f'exec chroot "$root" setpriv --reuid={ARBITRARY_UID} --regid=0 --clear-groups '
        f"--inh-caps=-all --bounding-set=-all -- env -i {env_args} sh -c {shlex.quote(f'cd {workdir} && exec {run}')}"
    )
    return "\n".join(lines)


def start(
    tmp_path: Path, data: Path, env: Mapping[str, str], *, writable_tmp: bool = True
) -> tuple[subprocess.Popen[bytes], Path]:
    """Start the image's command in a container-like root; returns the process and its log file.

    `data` becomes the image's volume (/data), owned like the image's (UID 10001, group 0, mode 2770). The process is
    the server itself (every step `exec`s), so a signal to it is a signal to gunicorn's master.
    """
    os.chown(data, 10001, 0)
    data.chmod(0o2770)
    new_root = tmp_path / "root"
    new_root.mkdir()
    script = _script(new_root, data, writable_tmp, {**image_environment(), "HOME": "/", **env}, image_command())
    log = tmp_path / "container.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    return process, log
