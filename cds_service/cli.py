"""`ivig-cds`: run the service, and work with the scenario fixtures.

    ivig-cds serve [--host H] [--port P] [--workers N] [--threads T]   (or IVIG_CDS_HOST, _PORT, ...)
    ivig-cds config check
    ivig-cds fixture list | request P01 [--hook H] [--as-of-now] | transaction P01 | load [P01 ...] --fhir-server URL
    ivig-cds dev-keys [--out DIR] [--iss URL]
    ivig-cds fire P01 [--url URL] [--hook H] [--fhir-server URL --no-prefetch] [--sign DIR] [--json]
    ivig-cds prefetch PATIENT_ID [--hook H] [--fhir-server URL [--resolve]]
    ivig-cds rules [--format text|markdown|json]
    ivig-cds report [--since DATE] [--format table|csv|json] [--database-url URL]
    ivig-cds db upgrade [--database-url URL] [--create]

`serve` runs gunicorn (a production WSGI server), never Flask's debug server. Every command
answers a mistake with a message and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from typing import Any


def _serve(args: argparse.Namespace) -> int:
    import os

    from cds_service import config_check, metrics, server
    from cds_service.app import create_app
    from cds_service.config import ConfigError

    checked = config_check.check()
    if checked.problems or checked.settings is None:
        for problem in checked.problems:
            print(f"ivig-cds: configuration error: {problem}", file=sys.stderr)
        return 2
    try:
        options = server.serve_options(
            checked.settings, os.environ, host=args.host, port=args.port, workers=args.workers, threads=args.threads
        )
    except ConfigError as error:
        print(f"ivig-cds: configuration error: {error}", file=sys.stderr)
        return 2

    # The workers' shared metrics directory must exist before the app (and its metrics) is built.
    with metrics.multiprocess_directory(checked.settings.metrics):
        try:
            app = create_app()
        except ConfigError as error:
            print(f"ivig-cds: configuration error: {error}", file=sys.stderr)
            return 2
        # Everything built so far (the FHIR models, the rules) lives as long as the process: keep it out
        # of the workers' garbage collections, which would otherwise walk it again and again.
        gc.collect()
        gc.freeze()
        server.run(app, options)
    return 0


def _database_url(args: argparse.Namespace) -> str:
    from cds_service.config import load_settings

    return args.database_url or load_settings().database_url


def _existing_storage(args: argparse.Namespace, command: str, create: bool = False) -> Any:
    """The database named by --database-url or IVIG_CDS_DATABASE_URL, said on stderr; never one made by accident.

    An SQLite file that does not exist is an error (a mistyped path would otherwise become a new,
    empty database and a misleading "no data yet"), unless `create` is asked for; its folder must
    exist either way. Returns the exit status instead of a Storage when it cannot be opened.
    """
    from cds_service.config import ConfigError
    from cds_service.storage import Storage, describe_location, normalise_url, sqlite_file

    try:
        url = normalise_url(_database_url(args))
    except ConfigError as error:
        print(f"ivig-cds {command}: {error}", file=sys.stderr)
        return 2
    print(f"ivig-cds {command}: database {describe_location(url)}", file=sys.stderr)
    file = sqlite_file(url)
    if file is not None and not file.exists():
        if not create:
            hint = " (ivig-cds db upgrade --create makes a new one)" if command == "db" else ""
            print(
                f"ivig-cds {command}: no database file at {file.resolve()}; check --database-url or "
                f"IVIG_CDS_DATABASE_URL{hint}",
                file=sys.stderr,
            )
            return 2
        if not file.resolve().parent.is_dir():
            print(f"ivig-cds {command}: the folder {file.resolve().parent} does not exist", file=sys.stderr)
            return 2
    return Storage(url)


def _report(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from cds_service import report
    from cds_service.storage import describe_error, migrations

    try:
        since = report.parse_since(args.since) if args.since else None
    except ValueError as error:
        print(f"ivig-cds report: {error}", file=sys.stderr)
        return 2
    storage = _existing_storage(args, "report")
    if isinstance(storage, int):
        return storage
    try:
        with storage.begin() as conn:
            if migrations.current_version(conn) == 0:
                print(f"ivig-cds report: {storage.described} holds no ivig-cds data yet", file=sys.stderr)
                return 2
        sys.stdout.write(report.render(report.build(storage, since), args.format))
    except SQLAlchemyError as error:
        print(f"ivig-cds report: database error on {storage.described} ({describe_error(error)})", file=sys.stderr)
        return 1
    finally:
        storage.close()
    return 0


def _db(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from cds_service.storage import describe_error

    storage = _existing_storage(args, "db", create=args.create)
    if isinstance(storage, int):
        return storage
    try:
        version = storage.ensure_schema()
    except SQLAlchemyError as error:
        print(f"ivig-cds db: database error on {storage.described} ({describe_error(error)})", file=sys.stderr)
        return 1
    finally:
        storage.close()
    print(f"{storage.described}: schema at version {version}")
    return 0


def _fixture(args: argparse.Namespace) -> int:
    import fhir_fixtures
    from hooks.services import SERVICES

    if args.action == "list":
        for scenario in fhir_fixtures.all_scenarios():
            print(f"{scenario.id}\t{scenario.title}")
        return 0
    try:
        scenario = fhir_fixtures.find(args.scenario)
    except LookupError as error:
        print(f"ivig-cds fixture: {error}", file=sys.stderr)
        return 2
    if args.as_of_now:
        scenario = scenario.rebased(datetime.now(UTC))
    if args.action == "transaction":
        output = scenario.transaction()
    else:
        hook = args.hook or scenario.hook
        service = next(s for s in SERVICES if s.hook == hook)
        output = scenario.prefetch_request(service.prefetch, hook=hook)
    json.dump(output, sys.stdout, indent=2, ensure_ascii=False)
    print()
    return 0


def _rules(args: argparse.Namespace) -> int:
    """The rule catalogue for clinical governance, generated from the registered rules themselves."""
    from cds_service import catalogue
    from cds_service.config import ConfigError, load_settings
    from hooks.rules import REGISTRY

    try:
        settings = load_settings().rules  # the thresholds this deployment's environment puts in force
    except ConfigError as error:
        print(f"ivig-cds: configuration error: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(catalogue.render(REGISTRY.values(), settings, args.format))
    return 0


class HelpFormatter(argparse.HelpFormatter):
    """Help that shows each option's default, where it has one worth saying."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        unset = default is None or default is False or default is argparse.SUPPRESS
        worth_saying = action.option_strings and not unset
        if "%(default)" not in text and worth_saying:
            text += " (default: %(default)s)"
        return text


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 1 to 65535 (gunicorn would otherwise fail with a traceback)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port: give 1 to 65535")
    return port


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def version() -> str:
    try:
        return metadata.version("ivig-cds")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    from cds_service import cli_config, cli_dev, cli_fire

    parser = argparse.ArgumentParser(
        prog="ivig-cds", description="IVIG and platelet CDS Hooks service", formatter_class=HelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"ivig-cds {version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help_text, description=help_text, formatter_class=HelpFormatter)

    serve = command("serve", "run the service with gunicorn (configuration: IVIG_CDS_* variables)")
    serve.add_argument(
        "--host", help="address to listen on, 0.0.0.0 for every interface (default: IVIG_CDS_HOST, else 127.0.0.1)"
    )
    serve.add_argument("--port", type=port_number, help="TCP port to listen on (default: IVIG_CDS_PORT, else 8080)")
    serve.add_argument(
        "--workers",
        type=positive_int,
        help="gunicorn worker processes (default: IVIG_CDS_WORKERS, else WEB_CONCURRENCY, else 2)",
    )
    serve.add_argument("--threads", type=positive_int, help="threads per worker (default: IVIG_CDS_THREADS, else 4)")
    serve.set_defaults(run=_serve)

    cli_config.register(command)

    fixture = command("fixture", "the scenarios: list them, print one as a request or transaction, load them")
    actions = fixture.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        return actions.add_parser(name, help=help_text, description=help_text, formatter_class=HelpFormatter)

    action("list", "list the scenarios (id and title)").set_defaults(run=_fixture)
    request = action("request", "print a scenario as a prefetch-complete CDS Hooks request")
    request.add_argument("scenario", help="scenario id, in any case (P01, p1)")
    request.add_argument(
        "--hook", choices=["order-select", "order-sign"], help="the hook to call (default: the scenario's own)"
    )
    request.add_argument("--as-of-now", action="store_true", help="shift the scenario's dates to the present")
    request.set_defaults(run=_fixture)
    transaction = action("transaction", "print a scenario's record as a FHIR transaction Bundle")
    transaction.add_argument("scenario", help="scenario id, in any case (P01, p1)")
    transaction.add_argument("--as-of-now", action="store_true", help="shift the scenario's dates to the present")
    transaction.set_defaults(run=_fixture)
    cli_dev.register_fixture_load(action)

    cli_dev.register(command)
    cli_fire.register(command)

    catalogue = command("rules", "print the rule catalogue (id, trigger, indicator, advice, sources)")
    catalogue.add_argument("--format", choices=["text", "markdown", "json"], default="text", help="output format")
    catalogue.set_defaults(run=_rules)

    governance = command("report", "per rule: cards shown, accepted, overridden, why, latency")
    governance.add_argument("--since", help="only invocations from this date (YYYY-MM-DD, UTC) or ISO date-time")
    governance.add_argument("--format", choices=["table", "csv", "json"], default="table", help="output format")
    governance.add_argument("--database-url", help="SQLAlchemy URL (default: IVIG_CDS_DATABASE_URL)")
    governance.set_defaults(run=_report)

    database = command("db", "create or migrate the feedback and audit database")
    database.add_argument("action", choices=["upgrade"], help="upgrade: bring the schema to this release's version")
    database.add_argument("--database-url", help="SQLAlchemy URL (default: IVIG_CDS_DATABASE_URL)")
    database.add_argument("--create", action="store_true", help="make the SQLite file if it does not exist yet")
    database.set_defaults(run=_db)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status = int(args.run(args))
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`ivig-cds rules | head`): stop quietly, as other Unix tools do.
        # stdout is pointed at /dev/null so the interpreter's final flush cannot complain either.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a tool stopped by a closed pipe
    except KeyboardInterrupt:
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
