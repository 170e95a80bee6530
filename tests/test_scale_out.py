"""Three `ivig-cds serve` replicas behind HAProxy, sharing PostgreSQL and Redis; one is SIGKILLed
in the middle of a few thousand mixed calls (tests/cluster.py starts them).

What must hold, as a hospital relies on it:
- no committed feedback is lost (answered 200 → stored once; unanswered ones are retried, as
  EHRs do, and stored once);
- every replayed token is refused, by every replica, also a token first spent on the killed one;
  and a token sent to all three replicas at the same moment is accepted exactly once;
- audit rows = hook calls answered − the rows the killed replica still held: its own request log
  (request ids, written before each answer) names the calls it took, so the rows missing from
  the database must be exactly some of those, and no surviving replica may lose one;
- `ivig-cds report` agrees with what the clients saw and sent.
"""

from __future__ import annotations

import json
import os
import random
import threading
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, select

import fhir_fixtures
from cds_service.storage.schema import card, feedback, invocation
from tests import cluster as clusters
from tests.auth_tokens import bearer, token
from tests.conftest import SIGN

pytestmark = pytest.mark.integration

HOOK = f"/cds-services/{SIGN.id}"
FEEDBACK = f"{HOOK}/feedback"
SCENARIOS = ("P01", "P24", "P35")  # critical bleeding (2 cards), pregnancy (5 cards), no judgement
OPERATIONS = 2400
THREADS = 12
KILL_AT = 900


@pytest.fixture(scope="module")
def conninfo() -> str:
    found, why = clusters.missing()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the scale-out test: {why}")
        pytest.skip(why)
    return found  # type: ignore[return-value]


@dataclass
class Answer:
    status: int | None  # None: no HTTP answer at all
    by_replica: bool  # a replica answered (our request id came back), not HAProxy on its behalf
    body: Any = None


@dataclass
class Ledger:
    """What the clients did and saw, shared by the driver threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    hook_answers: dict[str, Answer] = field(default_factory=dict)  # request id → answer
    sent_scenario: dict[str, str] = field(default_factory=dict)
    cards: dict[str, list[dict]] = field(default_factory=dict)  # request id → cards received
    spent: list[tuple[str, str]] = field(default_factory=list)  # (token, where first accepted)
    replays: list[tuple[str, Answer]] = field(default_factory=list)  # (target, answer)
    open_cards: list[dict] = field(default_factory=list)
    feedback_items: list[dict] = field(default_factory=list)
    feedback_committed: set[int] = field(default_factory=set)  # indexes into feedback_items


def post(session: requests.Session, url: str, body: Any, signed: str, rid: str | None = None) -> Answer:
    rid = rid or uuid.uuid4().hex
    try:
        response = session.post(url, json=body, headers={**bearer(signed), "X-Request-Id": rid}, timeout=30)
    except requests.RequestException:
        return Answer(None, False)
    by_replica = response.headers.get("X-Request-Id") == rid
    try:
        parsed = response.json()
    except ValueError:
        parsed = None
    return Answer(response.status_code, by_replica, parsed)


def requests_of() -> dict[str, dict]:
    now = datetime.now(UTC)
    return {s: fhir_fixtures.load(s).rebased(now).prefetch_request(SIGN.prefetch) for s in SCENARIOS}


def feedback_item(found: dict) -> dict:
    moment = datetime.now(UTC).isoformat()
    if found.get("suggestions"):
        return {
            "card": found["uuid"],
            "outcome": "accepted",
            "outcomeTimestamp": moment,
            "acceptedSuggestions": [{"id": found["suggestions"][0]["uuid"]}],
        }
    return {
        "card": found["uuid"],
        "outcome": "overridden",
        "outcomeTimestamp": moment,
        "overrideReason": {"reason": found["overrideReasons"][0]},
    }


def test_three_replicas_lose_no_feedback_refuse_every_replay_and_account_for_every_audit_row(conninfo, tmp_path):
    bodies = requests_of()
    ledger = Ledger()
    local = threading.local()
    rng = random.Random(11)
    plan = [rng.choices(("hook", "feedback", "replay"), (60, 20, 20))[0] for _ in range(OPERATIONS)]

    with clusters.running_cluster(tmp_path, conninfo, count=3) as cl:
        victim = cl.replicas[1]
        direct = {r.name: r.url for r in cl.replicas}

        sessions: list[requests.Session] = []

        def session() -> requests.Session:
            if not hasattr(local, "session"):
                local.session = requests.Session()
                with ledger.lock:
                    sessions.append(local.session)
            return local.session

        # 1. The same token at all three replicas at one moment: exactly one accepts it.
        for _ in range(20):
            signed = token(HOOK)
            barrier = threading.Barrier(3)

            def race(url: str, signed: str = signed, barrier: threading.Barrier = barrier) -> Answer:
                rid = uuid.uuid4().hex
                barrier.wait(10)
                with requests.Session() as one:
                    answer = post(one, url + HOOK, bodies["P35"], signed, rid)
                with ledger.lock:
                    ledger.hook_answers[rid] = answer
                    ledger.sent_scenario[rid] = "race"
                return answer

            with ThreadPoolExecutor(3) as pool:
                answers = list(pool.map(race, direct.values()))
            assert sorted(a.status for a in answers) == [200, 401, 401]

        # 2. The mixed run, with one replica SIGKILLed part way.
        def hook(index: int) -> None:
            scenario = SCENARIOS[index % len(SCENARIOS)]
            target = "lb"
            if index < KILL_AT and index % 20 == 0:
                target = victim.name  # some tokens are first spent on the replica that will die
            signed, rid = token(HOOK), uuid.uuid4().hex
            url = (cl.lb if target == "lb" else direct[target]) + HOOK
            answer = post(session(), url, bodies[scenario], signed, rid)
            with ledger.lock:
                ledger.hook_answers[rid] = answer
                ledger.sent_scenario[rid] = scenario
                if answer.by_replica and answer.status == 200:
                    ledger.cards[rid] = answer.body["cards"]
                    ledger.spent.append((signed, target))
                    ledger.open_cards += answer.body["cards"]

        def replay(index: int) -> None:
            with ledger.lock:
                if not ledger.spent:
                    return None
                signed, _ = ledger.spent[index % len(ledger.spent)]
            for target in ("lb", rng.choice([r.name for r in cl.live()])):
                rid, url = uuid.uuid4().hex, (cl.lb if target == "lb" else direct[target]) + HOOK
                answer = post(session(), url, bodies["P35"], signed, rid)
                with ledger.lock:
                    ledger.replays.append((target, answer))
                    ledger.hook_answers[rid] = answer
                    ledger.sent_scenario[rid] = "replay"

        def give_feedback(_: int) -> None:
            with ledger.lock:
                if not ledger.open_cards:
                    return
                item = feedback_item(ledger.open_cards.pop())
                ledger.feedback_items.append(item)
                position = len(ledger.feedback_items) - 1
            answer = post(session(), cl.lb + FEEDBACK, {"feedback": [item]}, token(FEEDBACK))
            if answer.by_replica and answer.status == 200:
                with ledger.lock:
                    ledger.feedback_committed.add(position)

        actions = {"hook": hook, "replay": replay, "feedback": give_feedback}

        def operate(index: int) -> None:
            if index == KILL_AT:
                cl.kill(victim)
            actions[plan[index]](index)

        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(operate, range(OPERATIONS)))

        # 3. EHRs retry feedback that got no answer; each report is stored once whatever happened.
        for position, item in enumerate(ledger.feedback_items):
            for _ in range(5):
                if position in ledger.feedback_committed:
                    break
                answer = post(session(), cl.lb + FEEDBACK, {"feedback": [item]}, token(FEEDBACK))
                if answer.by_replica and answer.status == 200:
                    ledger.feedback_committed.add(position)
        assert len(ledger.feedback_committed) == len(ledger.feedback_items)

        # 4. Tokens spent on the killed replica, and a sample of the others, replayed to every survivor.
        on_victim = [t for t, where in ledger.spent if where == victim.name]
        assert on_victim, "the run spent no token on the replica it killed"
        for signed in on_victim + [t for t, _ in ledger.spent[::25]]:
            for survivor in cl.live():
                rid = uuid.uuid4().hex
                answer = post(session(), survivor.url + HOOK, bodies["P35"], signed, rid)
                ledger.replays.append((survivor.name, answer))
                ledger.hook_answers[rid] = answer
                ledger.sent_scenario[rid] = "replay"

        for one in sessions:
            one.close()
        cl.stop_replicas()  # SIGTERM: the survivors finish and drain their audit queues
        victim_log = victim.log.read_text(errors="replace")
        engine = create_engine(cl.database_url)
        try:
            with engine.connect() as conn:
                audited = conn.execute(select(invocation.c.request_id, invocation.c.status)).all()
                card_rows = conn.execute(
                    select(invocation.c.request_id, card.c.card_uuid, card.c.rule_id).join(
                        invocation, card.c.invocation_id == invocation.c.id
                    )
                ).all()
                stored_feedback = conn.execute(
                    select(feedback.c.card_uuid, feedback.c.outcome, feedback.c.outcome_timestamp)
                ).all()
        finally:
            engine.dispose()
        report = json.loads(clusters.run_report(cl.database_url))

    # --- replays: never accepted, by any replica ------------------------------------------------
    answered_replays = [(target, a) for target, a in ledger.replays if a.by_replica]
    assert answered_replays and all(a.status == 401 for _, a in answered_replays)
    assert {t for t, _ in answered_replays} >= {"lb"} | {r.name for r in cl.replicas if r is not victim}

    # --- feedback: every report stored exactly once -------------------------------------------
    sent = Counter((i["card"], i["outcome"]) for i in ledger.feedback_items)
    stored = Counter((c, o) for c, o, _ in stored_feedback)
    assert stored == sent

    # --- audit: rows = calls answered − what the killed replica held -----------------------------
    answered = {rid for rid, a in ledger.hook_answers.items() if a.by_replica}
    unanswered = [rid for rid, a in ledger.hook_answers.items() if not a.by_replica]
    assert len(unanswered) <= 2 * THREADS, "only calls in flight at the kill may go unanswered"
    for rid, a in ledger.hook_answers.items():
        if a.by_replica:  # a fresh token is accepted (a call resent by the balancer would be a 401 here)
            assert a.status == (200 if ledger.sent_scenario[rid] in SCENARIOS else 401) or (
                ledger.sent_scenario[rid] == "race" and a.status == 200
            )
    rows = [rid for rid, _ in audited]
    assert len(rows) == len(set(rows)), "an audit row was written twice"
    in_database = set(rows)
    taken_by_victim = set()
    for line in victim_log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # the line SIGKILL cut short
        if entry.get("message") == "request" and entry.get("path") == "/cds-services/<service_id>":
            taken_by_victim.add(entry["request_id"])
    held = taken_by_victim - in_database
    assert in_database <= answered | taken_by_victim, "an audit row for a call nobody made"
    assert answered - in_database <= taken_by_victim, "a surviving replica lost audit rows"
    assert len(in_database) == len(answered | taken_by_victim) - len(held)
    print(
        f"\nscale-out: {len(ledger.hook_answers)} hook-endpoint calls ({len(answered)} answered by a replica, "
        f"{len(unanswered)} not), {len(ledger.feedback_items)} feedback reports, {len(answered_replays)} replays "
        f"refused; audit rows {len(in_database)}; the killed replica took {len(taken_by_victim)} calls and held "
        f"{len(held)} rows when killed"
    )

    # --- the report agrees with the clients -----------------------------------------------------
    db_cards: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for rid, card_uuid, rule in card_rows:
        db_cards[rid].append((card_uuid, rule))
    for rid in in_database & set(ledger.cards):
        assert sorted(db_cards[rid]) == sorted((c["uuid"], c["source"]["topic"]["code"]) for c in ledger.cards[rid])
    shown = Counter(rule for rid in in_database for _, rule in db_cards[rid])
    rule_of = {c_uuid: rule for rid in in_database for c_uuid, rule in db_cards[rid]}
    accepted, overridden = defaultdict(set), defaultdict(set)
    for item in ledger.feedback_items:
        if item["card"] in rule_of:
            (accepted if item["outcome"] == "accepted" else overridden)[rule_of[item["card"]]].add(item["card"])
    assert report["invocations"] == len(in_database)
    assert {r["rule"]: r["shown"] for r in report["rules"]} == dict(shown)
    assert {r["rule"]: r["accepted"] for r in report["rules"]} == {rule: len(accepted[rule]) for rule in shown}
    assert {r["rule"]: r["overridden"] for r in report["rules"]} == {rule: len(overridden[rule]) for rule in shown}
    assert report["unknown_card_feedback"] == sum(1 for i in ledger.feedback_items if i["card"] not in rule_of)
