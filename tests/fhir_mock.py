"""A `responses` callback that answers FHIR reads and searches from a scenario's record."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Sequence
from typing import Any

import responses

from fhir_fixtures import Scenario, evaluate

BASE = "https://fhir.example.org/r4"


def serve_scenario(
    rsps: responses.RequestsMock,
    scenario: Scenario,
    base: str = BASE,
    fail: Callable[[str], tuple[int, Any] | None] | None = None,
    seen: list[Any] | None = None,
    ignore_sort: bool = False,
) -> None:
    """Answer every GET under `base` from the scenario, paging at `_count` as a server does.

    `fail(path)` may return (status, body) instead; `ignore_sort` answers as a server that ignores
    `_sort`: in no particular (but repeatable) order.
    """
    resources = scenario.resources()
    if ignore_sort:
        resources = list(resources)
        random.Random(7).shuffle(resources)

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        relative = request.url[len(base) + 1 :]
        if seen is not None:
            seen.append(request)
        if fail is not None:
            failure = fail(relative)
            if failure is not None:
                status, body = failure
                return status, {"Content-Type": "application/fhir+json"}, json.dumps(body)
        if ignore_sort:
            relative = re.sub(r"&_sort=[^&]*", "", relative)
        result = evaluate(relative, resources, base=base)
        if result is None:
            return 404, {}, json.dumps({"resourceType": "OperationOutcome", "issue": []})
        return 200, {"Content-Type": "application/fhir+json"}, json.dumps(result)

    rsps.add_callback(responses.GET, re.compile(re.escape(base) + r"/.*"), callback=answer)


def keys_requested(requests_seen: Sequence[Any]) -> list[str]:
    return [r.url for r in requests_seen]
