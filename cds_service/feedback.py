"""`POST /cds-services/{id}/feedback` (CDS Hooks 2.0 §Feedback): what clinicians did with cards.

Clinical governance keeps or retires a rule by how often its cards are accepted or overridden,
and why; so a feedback report is answered 200 only once its rows are committed (SQLite with
`synchronous=FULL`, or PostgreSQL), and a client that retries after a lost answer does no harm:
(card, outcome, outcomeTimestamp) is unique and rows are inserted with "on conflict do nothing".

- The body is checked against `schemas/feedback-request.json` (400 with a value-free message);
  the service id must exist (404); the transport checks match the hook endpoint (415, 413).
- A card uuid this service has no record of is stored anyway, flagged `known_card = false`
  (it may come from another replica whose audit row is still queued, or from a client's bug).
- `overrideReason.userComment` is free text that may name the patient: it is stored, because
  governance needs it, and never logged (SQLAlchemy's errors hide statement parameters too).
- An unreachable database is a 503, so the client knows to retry.
- `outcomeTimestamp` must be a moment a clinician can have acted on a CDS Hooks card: from
  2015-01-01 (before CDS Hooks existed) to 5 minutes after the report arrives (clocks drift).
  Anything else (the years 0001, 377 or 529 a fuzzer sent, next week) is a 400 and no row: the
  governance report counts only real actions.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from blinker import Namespace
from flask import Blueprint, Flask, Response, current_app, jsonify, request
from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from cds_service import protocol
from cds_service.errors import SchemaViolationError, ServiceUnavailableError
from cds_service.pipeline import Pipeline, parse_json
from cds_service.routes import require_json
from cds_service.storage import Storage, describe_error
from cds_service.storage.schema import card as card_table
from cds_service.storage.schema import feedback as feedback_table

log = logging.getLogger(__name__)

blueprint = Blueprint("feedback", __name__)

#: Sent once a report is committed, with each item's outcome; the metrics module counts them.
feedback_stored = Namespace().signal("ivig-cds.feedback-stored")

SCHEMA = "feedback-request.json"
KNOWN_CARD_WAIT = 2.0  # seconds to let this process's audit writer catch up before flagging a card unknown
EARLIEST_OUTCOME = datetime(2015, 1, 1, tzinfo=UTC)  # no CDS Hooks card existed before: refused
CLOCK_SKEW = timedelta(minutes=5)  # an outcomeTimestamp later than this after receipt is refused

_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)


def parse_timestamp(value: str) -> datetime:
    """An RFC 3339 date-time as an aware UTC datetime.

    Fractions beyond microseconds are cut (Python's resolution); a leap second (`:60`) is read as
    the last microsecond of the minute. The zone is always explicit (the schema requires it).
    """
    match = _TIMESTAMP.match(value)
    if match is None:
        raise SchemaViolationError("outcomeTimestamp: not an RFC 3339 date-time")
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    micro = int((match.group(7) or "0")[:6].ljust(6, "0"))
    if second == 60:
        second, micro = 59, 999_999
    if match.group(8):
        zone = UTC
    else:
        offset = timedelta(hours=int(match.group(10)), minutes=int(match.group(11)))
        zone = timezone(-offset if match.group(9) == "-" else offset)
    try:
        # Year 0001 with a positive offset lies before datetime's minimum once in UTC: OverflowError.
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=zone).astimezone(UTC)
    except (ValueError, OverflowError):
        raise SchemaViolationError("outcomeTimestamp: not a valid calendar date-time") from None


def check_plausible(moment: datetime, now: datetime) -> None:
    """Refuse a moment no clinician can have acted at with a card (see the module's docstring)."""
    if moment < EARLIEST_OUTCOME:
        raise SchemaViolationError(f"outcomeTimestamp: before {EARLIEST_OUTCOME.date().isoformat()}")
    if moment > now + CLOCK_SKEW:
        minutes = int(CLOCK_SKEW.total_seconds() // 60)
        raise SchemaViolationError(f"outcomeTimestamp: in the future (more than {minutes} minutes after now)")


def _rows(service_id: str, items: list[dict[str, Any]], received_at: datetime) -> list[dict[str, Any]]:
    rows = []
    for index, item in enumerate(items):
        try:
            moment = parse_timestamp(item["outcomeTimestamp"])
            check_plausible(moment, received_at)
        except SchemaViolationError as error:
            raise SchemaViolationError(f"$.feedback[{index}].{error.message}") from None
        reason = (item.get("overrideReason") or {}).get("reason") or {}
        accepted = item.get("acceptedSuggestions")
        rows.append(
            {
                "received_at": received_at,
                "service_id": service_id,
                "card_uuid": item["card"].lower(),
                "outcome": item["outcome"],
                "outcome_timestamp": moment,
                "accepted_suggestions": json.dumps([s["id"] for s in accepted]) if accepted else None,
                "override_reason_system": reason.get("system"),
                "override_reason_code": reason.get("code"),
                "override_reason_display": reason.get("display"),
                "user_comment": (item.get("overrideReason") or {}).get("userComment"),
            }
        )
    return rows


def _known(conn: Connection, uuids: set[str]) -> set[str]:
    if not uuids:
        return set()
    found = conn.execute(select(card_table.c.card_uuid).where(card_table.c.card_uuid.in_(sorted(uuids))))
    return {row[0] for row in found}


_KEY = ("card_uuid", "outcome", "outcome_timestamp")


def _merged_suggestions(*encoded: str | None) -> str | None:
    ids = list(dict.fromkeys(i for value in encoded if value for i in json.loads(value)))
    return json.dumps(ids) if ids else None


def _insert_ignoring_duplicates(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """Insert new reports; a retry is stored once, but suggestions accepted in another item are kept.

    (card, outcome, timestamp) identifies a report, so a retried post adds nothing; a client that
    sends one item per accepted suggestion for the same card and moment must not lose all but the
    first, so their accepted suggestion ids are merged into the stored row.
    """
    by_key: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = tuple(row[k] for k in _KEY)
        if key in by_key:
            first = by_key[key]
            first["accepted_suggestions"] = _merged_suggestions(
                first["accepted_suggestions"], row["accepted_suggestions"]
            )
        else:
            by_key[key] = dict(row)
    unique = list(by_key.values())
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(feedback_table).on_conflict_do_nothing(index_elements=list(_KEY))
    inserted = max(conn.execute(statement, unique).rowcount, 0)
    if inserted < len(unique):
        for row in unique:
            if not row["accepted_suggestions"]:
                continue
            match = [feedback_table.c[k] == row[k] for k in _KEY]
            stored = conn.execute(select(feedback_table.c.accepted_suggestions).where(*match)).scalar()
            merged = _merged_suggestions(stored, row["accepted_suggestions"])
            if merged != stored:
                conn.execute(feedback_table.update().where(*match).values(accepted_suggestions=merged))
    return inserted


def store(storage: Storage, service_id: str, items: list[dict[str, Any]], audit: Any = None) -> int:
    """Commit the feedback items; return how many rows were new (the rest were duplicates)."""
    rows = _rows(service_id, items, datetime.now(UTC))
    uuids = {row["card_uuid"] for row in rows}
    storage.ensure_schema()
    with storage.begin() as conn:
        known = _known(conn, uuids)
    if known != uuids and audit is not None and audit.pending:
        # The card may have been issued moments ago by this process, its audit row still queued.
        audit.flush(KNOWN_CARD_WAIT)
        with storage.begin() as conn:
            known = _known(conn, uuids)
    for row in rows:
        row["known_card"] = row["card_uuid"] in known
    with storage.begin(write=True) as conn:
        return _insert_ignoring_duplicates(conn, rows)


@blueprint.post("/cds-services/<service_id>/feedback")
def post_feedback(service_id: str) -> Response:
    pipeline: Pipeline = current_app.extensions["ivig_cds.pipeline"]
    pipeline.service(service_id)  # 404 before anything else is looked at
    require_json()
    body = parse_json(request.get_data(cache=False))
    problem = protocol.first_error(SCHEMA, body)
    if problem:
        raise SchemaViolationError(f"feedback does not follow CDS Hooks 2.0: {problem}")
    storage: Storage = current_app.extensions["ivig_cds.storage"]
    try:
        new = store(storage, service_id, body["feedback"], current_app.extensions.get("ivig_cds.audit"))
    except SQLAlchemyError as error:
        log.error(
            "feedback not stored: database unavailable",
            extra={"error": type(error).__name__, "failure": describe_error(error), "database": storage.described},
        )
        raise ServiceUnavailableError("the feedback store is unavailable; retry later") from None
    log.info(f"feedback stored: {new} new, {len(body['feedback']) - new} duplicate", extra={"service": service_id})
    feedback_stored.send(current_app._get_current_object(), outcomes=[i["outcome"] for i in body["feedback"]])
    return jsonify({})


def init_app(app: Flask) -> None:
    app.register_blueprint(blueprint)
