"""The README stands alone in a clone: no links outside the repository, and the commands it shows
are ones this release accepts as written (the real runs are in test_cli_tools and test_packaging)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from cds_service.cli import build_parser

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SH_BLOCKS = re.findall(r"```sh\n(.*?)```", README, flags=re.DOTALL)


def _commands() -> list[str]:
    lines = []
    for block in SH_BLOCKS:
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.split("   #", 1)[0].strip()
            parts = [part.strip() for part in re.split(r"&&|\|", line)]
            # Usage synopses (`report [--since DATE]`) are not commands.
            lines += [part for part in parts if re.search(r"(^|bin/)ivig-cds ", part) and "[-" not in part]
    return lines


def test_no_link_or_path_leaves_the_repository():
    assert "../" not in README
    assert not re.search(r"\]\((?!https?://|#)[^)]*\)", README), "relative links must name files in the repository"


@pytest.mark.parametrize("command", _commands())
def test_every_ivig_cds_command_in_the_readme_is_accepted(command):
    words = shlex.split(command.replace('"$(', "").replace(')"', "").replace("eval ", ""))
    words = [w for w in words if "=" not in w or w.startswith("-")]  # drop VAR=value prefixes
    arguments = words[words.index(next(w for w in words if w.endswith("ivig-cds"))) + 1 :]
    arguments = [a for a in arguments if a not in (">", "2>&1", "&") and not a.endswith(".log")]
    build_parser().parse_args(arguments)


def test_the_readme_shows_fixture_load_and_a_signed_fetched_call():
    commands = " ".join(_commands())
    assert "fixture load --fhir-server" in commands
    assert re.search(r"fire P01 --no-prefetch --fhir-server \S+ --sign", commands)


def test_bench_commands_name_existing_scripts_run_with_the_project_environment():
    named = re.findall(r"`([^`]*bench/\w+\.py)`", README)
    assert named
    for command in named:
        assert command.startswith(".venv/bin/python bench/"), command
        assert (ROOT / command.split()[-1]).is_file(), command
