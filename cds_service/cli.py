"""`ivig-cds`: run the service, and work with the scenario fixtures.

    ivig-cds serve [--host H] [--port P] [--workers N] [--threads T]   (or IVIG_CDS_HOST, _PORT, ...)
    ivig-cds fixture list
    ivig-cds fixture request P01 [--hook order-select|order-sign] [--as-of-now]
    ivig-cds fixture transaction P01
    ivig-cds rules [--format text|markdown|json]
    ivig-cds report [--since DATE] [--format table|csv|json] [--database-url URL]
    ivig-cds db upgrade [--database-url URL]

`serve` runs gunicorn (a production WSGI server), never Flask's debug server.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime


def _serve(args: argparse.Namespace) -> int:
    import os

    from cds_service import metrics, server
    from cds_service.app import create_app
    from cds_service.config import ConfigError, load_settings

    try:
        settings = load_settings()
        options = server.serve_options(
            settings, os.environ, host=args.host, port=args.port, workers=args.workers, threads=args.threads
        )
    except ConfigError as error:
        print(f"ivig-cds: configuration error: {error}", file=sys.stderr)
        return 2

    # The workers' shared metrics directory must exist before the app (and its metrics) is built.
    with metrics.multiprocess_directory(settings.metrics):
        try:
            app = create_app()
        except ConfigError as error:
            print(f"ivig-cds: configuration error: {error}", file=sys.stderr)
            return 2
        server.run(app, options)
    return 0


def _database_url(args: argparse.Namespace) -> str:
    from cds_service.config import load_settings

    return args.database_url or load_settings().database_url


def _report(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from cds_service import report
    from cds_service.config import ConfigError
    from cds_service.storage import Storage, migrations

    try:
        since = report.parse_since(args.since) if args.since else None
        storage = Storage(_database_url(args))
    except (ConfigError, ValueError) as error:
        print(f"ivig-cds report: {error}", file=sys.stderr)
        return 2
    try:
        with storage.begin() as conn:
            if migrations.current_version(conn) == 0:
                print("ivig-cds report: this database holds no ivig-cds data yet", file=sys.stderr)
                return 2
        sys.stdout.write(report.render(report.build(storage, since), args.format))
    except SQLAlchemyError as error:
        print(f"ivig-cds report: database error ({type(error).__name__})", file=sys.stderr)
        return 1
    finally:
        storage.close()
    return 0


def _db(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from cds_service.config import ConfigError
    from cds_service.storage import Storage, describe_url

    try:
        storage = Storage(_database_url(args))
    except ConfigError as error:
        print(f"ivig-cds db: {error}", file=sys.stderr)
        return 2
    try:
        version = storage.ensure_schema()
    except SQLAlchemyError as error:
        print(f"ivig-cds db: database error ({type(error).__name__})", file=sys.stderr)
        return 1
    finally:
        storage.close()
    print(f"{describe_url(storage.url)}: schema at version {version}")
    return 0


def _fixture(args: argparse.Namespace) -> int:
    import fhir_fixtures
    from hooks.services import SERVICES

    if args.action == "list":
        for scenario in fhir_fixtures.all_scenarios():
            print(f"{scenario.id}\t{scenario.title}")
        return 0
    if not args.scenario:
        print("ivig-cds fixture: name a scenario (see 'ivig-cds fixture list')", file=sys.stderr)
        return 2
    try:
        scenario = fhir_fixtures.load(args.scenario)
    except FileNotFoundError:
        print(f"ivig-cds fixture: no scenario {args.scenario!r}", file=sys.stderr)
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ivig-cds", description="IVIG and platelet CDS Hooks service")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the service with gunicorn (see cds_service/server.py)")
    serve.add_argument("--host", help="default: IVIG_CDS_HOST, else 127.0.0.1")
    serve.add_argument("--port", type=int, help="default: IVIG_CDS_PORT, else 8080")
    serve.add_argument("--workers", type=int, help="default: IVIG_CDS_WORKERS, else WEB_CONCURRENCY, else 2")
    serve.add_argument("--threads", type=int, help="default: IVIG_CDS_THREADS, else 4")
    serve.set_defaults(run=_serve)

    fixture = commands.add_parser("fixture", help="print a scenario as a CDS Hooks request or FHIR transaction")
    fixture.add_argument("action", choices=["list", "request", "transaction"])
    fixture.add_argument("scenario", nargs="?")
    fixture.add_argument("--hook", choices=["order-select", "order-sign"])
    fixture.add_argument("--as-of-now", action="store_true", help="shift the scenario's dates to the present")
    fixture.set_defaults(run=_fixture)

    catalogue = commands.add_parser("rules", help="print the rule catalogue (id, trigger, indicator, advice, sources)")
    catalogue.add_argument("--format", choices=["text", "markdown", "json"], default="text")
    catalogue.set_defaults(run=_rules)

    governance = commands.add_parser("report", help="per rule: cards shown, accepted, overridden, why, latency")
    governance.add_argument("--since", help="only invocations from this date (YYYY-MM-DD, UTC) or ISO date-time")
    governance.add_argument("--format", choices=["table", "csv", "json"], default="table")
    governance.add_argument("--database-url", help="SQLAlchemy URL (default: IVIG_CDS_DATABASE_URL)")
    governance.set_defaults(run=_report)

    database = commands.add_parser("db", help="create or migrate the feedback and audit database")
    database.add_argument("action", choices=["upgrade"])
    database.add_argument("--database-url", help="SQLAlchemy URL (default: IVIG_CDS_DATABASE_URL)")
    database.set_defaults(run=_db)

    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
