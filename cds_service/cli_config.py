"""`ivig-cds config check`: a dry run of the configuration, before a deployment rather than during one.

It validates exactly what `serve` validates (every `IVIG_CDS_*` variable, the issuers and their
pinned keys, the algorithms, origins, database and replay-store URLs) without opening a
connection or creating a file, and prints either every problem (exit 2) or what would be in force.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable


def register(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    config = command("config", "check the configuration (IVIG_CDS_* variables) without starting the service")
    actions = config.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser(
        "check",
        help="print what would be in force, or every problem (exit 2)",
        description="Validate the IVIG_CDS_* environment as 'serve' does; open no connection, create no file.",
        formatter_class=config.formatter_class,
    )
    check.set_defaults(run=_check)


def _check(_args: argparse.Namespace) -> int:
    from cds_service import config_check

    result = config_check.check()
    sys.stdout.write(config_check.render(result))
    return 2 if result.problems else 0
