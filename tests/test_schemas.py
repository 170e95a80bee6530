"""Checks of the CDS Hooks 2.0 JSON Schemas in cds_service/schemas/.

Self-contained: the schema files are read straight from disk, and every example payload is built here.
Formats that jsonschema cannot check without optional packages (uri, date-time) are backed by
`pattern`s in the schemas, so each invalid example is tried both with and without a format checker.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from cds_service import protocol

SCHEMA_DIR = Path(__file__).parents[1] / "cds_service" / "schemas"
SCHEMA_NAMES = (
    "cds-request.json",
    "context-order-select.json",
    "context-order-sign.json",
    "cds-response.json",
    "feedback-request.json",
    "discovery-response.json",
)
ID_BASE = "https://ivig-cds.example/schemas/"

CARD_UUID = "5b3c1a9e-7f2d-4c61-9a0e-2d8f6b4e1c77"
SUGGESTION_UUID = "c0ffee00-1234-4abc-8def-0123456789ab"
OTHER_UUID = "9e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b"


@cache
def load_schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))


@cache
def validator(name: str, with_formats: bool = True) -> Draft202012Validator:
    checker = Draft202012Validator.FORMAT_CHECKER if with_formats else None
    return Draft202012Validator(load_schema(name), format_checker=checker)


def error_messages(name: str, instance: Any, with_formats: bool = True) -> list[str]:
    return [e.message for e in validator(name, with_formats).iter_errors(instance)]


def assert_valid(name: str, instance: Any) -> None:
    for with_formats in (True, False):
        messages = error_messages(name, instance, with_formats)
        assert messages == [], f"{name} (formats={with_formats}) rejected a valid example: {messages}"
    assert protocol.compiled(name).is_valid(instance), f"{name}: the compiled validator rejected a valid example"


def assert_invalid(name: str, instance: Any) -> None:
    for with_formats in (True, False):
        assert error_messages(name, instance, with_formats), (
            f"{name} (formats={with_formats}) accepted an invalid example"
        )
    # The service's fast path: a body the compiled validator accepts is never checked again.
    assert not protocol.compiled(name).is_valid(instance), f"{name}: the compiled validator accepted an invalid example"


# --------------------------------------------------------------------------- example payloads


def ivig_request_resource(rid: str = "ivig-draft-1") -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "draft",
        "intent": "order",
        "subject": {"reference": "Patient/pt-42"},
        "medicationCodeableConcept": {"text": "Immune globulin (human) IV 1 g/kg"},
    }


def draft_bundle() -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": ivig_request_resource()},
            {"resource": {"resourceType": "ServiceRequest", "id": "plt-count-1", "status": "draft"}},
        ],
    }


def order_select_context() -> dict[str, Any]:
    return {
        "userId": "Practitioner/dr-hema",
        "patientId": "pt-42",
        "encounterId": "enc-7",
        "selections": ["MedicationRequest/ivig-draft-1"],
        "draftOrders": draft_bundle(),
    }


def order_sign_context() -> dict[str, Any]:
    ctx = order_select_context()
    del ctx["selections"]
    return ctx


def cds_request() -> dict[str, Any]:
    return {
        "hook": "order-select",
        "hookInstance": "3f8a2c1e-6b7d-4e90-a1b2-c3d4e5f60718",
        "fhirServer": "https://ehr.example.org/fhir/r4",
        "fhirAuthorization": {
            "access_token": "opaque-token-value",
            "token_type": "Bearer",
            "expires_in": 120,
            "scope": "patient/Patient.read patient/Observation.read",
            "subject": "ivig-cds-client",
            "patient": "pt-42",
        },
        "context": order_select_context(),
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "pt-42"},
            "platelets": {"resourceType": "Bundle", "type": "searchset", "total": 0},
        },
    }


def card() -> dict[str, Any]:
    return {
        "uuid": CARD_UUID,
        "summary": "Platelets 18 x10^9/L: consider IVIG dose review",
        "detail": "Recent **platelet count** is low.\n\n- Check weight-based dosing",
        "indicator": "warning",
        "source": {
            "label": "ivig-cds thrombocytopenia rules",
            "url": "https://ivig-cds.example/about",
            "icon": "https://ivig-cds.example/icon-100.png",
            "topic": {
                "system": "https://ivig-cds.example/topics",
                "code": "ivig-dose",
                "display": "IVIG dosing",
            },
        },
        "suggestions": [
            {
                "label": "Reduce dose to 0.4 g/kg",
                "uuid": SUGGESTION_UUID,
                "isRecommended": True,
                "actions": [
                    {
                        "type": "update",
                        "description": "Replace the draft IVIG order with a 0.4 g/kg dose",
                        "resource": ivig_request_resource(),
                    },
                ],
            },
            {
                "label": "Cancel the IVIG order",
                "uuid": OTHER_UUID,
                "actions": [
                    {
                        "type": "delete",
                        "description": "Remove the draft IVIG order",
                        "resourceId": "MedicationRequest/ivig-draft-1",
                    },
                ],
            },
        ],
        "selectionBehavior": "at-most-one",
        "overrideReasons": [
            {
                "system": "https://ivig-cds.example/override",
                "code": "specialist",
                "display": "Haematology advised",
            },
        ],
        "links": [
            {"label": "Dosing guideline", "url": "https://ivig-cds.example/guideline", "type": "absolute"},
            {
                "label": "Open dose calculator",
                "url": "https://apps.example.org/launch",
                "type": "smart",
                "appContext": '{"order":"ivig-draft-1"}',
            },
        ],
    }


def cds_response() -> dict[str, Any]:
    return {
        "cards": [card(), {"summary": "Informational", "indicator": "info", "source": {"label": "ivig-cds"}}],
        "systemActions": [
            {"type": "create", "resource": {"resourceType": "Flag", "status": "active"}},
        ],
    }


def feedback() -> dict[str, Any]:
    return {
        "feedback": [
            {
                "card": CARD_UUID,
                "outcome": "accepted",
                "acceptedSuggestions": [{"id": SUGGESTION_UUID}],
                "outcomeTimestamp": "2025-03-04T10:15:30Z",
            },
            {
                "card": OTHER_UUID,
                "outcome": "overridden",
                "overrideReason": {
                    "reason": {"system": "https://ivig-cds.example/override", "code": "specialist"},
                    "userComment": "Discussed with haematology.",
                },
                "outcomeTimestamp": "2025-03-04T10:16:00.250Z",
            },
        ],
    }


def discovery() -> dict[str, Any]:
    return {
        "services": [
            {
                "hook": "order-select",
                "title": "IVIG order check",
                "description": "Reviews IVIG and platelet orders for thrombocytopenic patients.",
                "id": "ivig-order-select",
                "prefetch": {
                    "patient": "Patient/{{context.patientId}}",
                    "platelets": "Observation?patient={{context.patientId}}&code=http://loinc.org|777-3",
                },
                "usageRequirements": "Needs recent platelet counts.",
            },
            {
                "hook": "order-sign",
                "description": "Final IVIG check before signing.",
                "id": "ivig-order-sign",
            },
        ],
    }


Mutator = Callable[[dict[str, Any]], object]


def run_mutation(factory: Callable[[], dict[str, Any]], mutate: Mutator) -> dict[str, Any]:
    doc = copy.deepcopy(factory())
    mutate(doc)
    return doc


# --------------------------------------------------------------------------- the schema files themselves


def test_schema_folder_holds_exactly_the_expected_files() -> None:
    assert sorted(p.name for p in SCHEMA_DIR.glob("*.json")) == sorted(SCHEMA_NAMES)


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_schema_is_well_formed_draft_2020_12(name: str) -> None:
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == ID_BASE + name
    assert schema["title"]
    assert schema["description"]
    assert schema["$comment"].startswith("CDS Hooks 2.0")


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_schema_is_self_contained(name: str) -> None:
    """Every $ref is local, so no referencing registry is needed to use a schema."""
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(load_schema(name))
    assert all(ref.startswith("#/") for ref in refs), refs


# --------------------------------------------------------------------------- cds-request.json

REQ = "cds-request.json"


def test_request_full_example_is_valid() -> None:
    assert_valid(REQ, cds_request())


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda d: d["prefetch"].update(patient=None), id="prefetch-value-null"),
        pytest.param(lambda d: d.pop("prefetch"), id="no-prefetch"),
        pytest.param(lambda d: (d.pop("fhirAuthorization"), d.pop("fhirServer")), id="no-fhir-access"),
        pytest.param(lambda d: d.pop("fhirAuthorization"), id="server-without-token"),
        pytest.param(lambda d: d["fhirAuthorization"].pop("patient"), id="token-without-patient"),
        pytest.param(lambda d: d.update(fhirServer="http://localhost:8080/fhir"), id="plain-http-server"),
        pytest.param(lambda d: d.update(extension={"com.example.site": "north"}), id="extension-object"),
        pytest.param(lambda d: d.update(vendorField=1), id="unknown-member-tolerated"),
        pytest.param(lambda d: d.update(hookInstance=d["hookInstance"].upper()), id="uppercase-uuid"),
        pytest.param(
            lambda d: d["prefetch"].update(err={"resourceType": "OperationOutcome", "issue": []}),
            id="prefetch-operation-outcome",
        ),
        # Tolerated: a prefetch value that is not a FHIR resource is read from fhirServer instead.
        pytest.param(lambda d: d["prefetch"].update(patient="Patient/pt-42"), id="prefetch-value-string"),
        pytest.param(lambda d: d["prefetch"].update(patient={"id": "pt-42"}), id="prefetch-no-resourceType"),
    ],
)
def test_request_valid_variants(mutate: Mutator) -> None:
    assert_valid(REQ, run_mutation(cds_request, mutate))


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda d: d.pop("hookInstance"), id="no-hookInstance"),
        pytest.param(lambda d: d.pop("hook"), id="no-hook"),
        pytest.param(lambda d: d.pop("context"), id="no-context"),
        pytest.param(lambda d: d.update(hook=""), id="empty-hook"),
        pytest.param(lambda d: d.update(hookInstance="not-a-uuid"), id="hookInstance-not-uuid"),
        pytest.param(lambda d: d.update(hookInstance="urn:uuid:" + d["hookInstance"]), id="hookInstance-urn"),
        pytest.param(lambda d: d.pop("fhirServer"), id="token-without-server"),
        pytest.param(lambda d: d.update(fhirServer="ehr.example.org/fhir"), id="server-not-absolute-url"),
        pytest.param(lambda d: d["fhirAuthorization"].update(token_type="MAC"), id="token-type-not-bearer"),
        pytest.param(lambda d: d["fhirAuthorization"].pop("subject"), id="token-without-subject"),
        pytest.param(lambda d: d["fhirAuthorization"].pop("scope"), id="token-without-scope"),
        pytest.param(lambda d: d["fhirAuthorization"].update(expires_in="300"), id="expires-in-string"),
        pytest.param(lambda d: d["fhirAuthorization"].update(expires_in=1.5), id="expires-in-float"),
        pytest.param(lambda d: d.update(context="pt-42"), id="context-not-object"),
        pytest.param(lambda d: d.update(extension="flag"), id="extension-not-object"),
    ],
)
def test_request_invalid_variants(mutate: Mutator) -> None:
    assert_invalid(REQ, run_mutation(cds_request, mutate))


def test_request_context_matches_hook_context_schema() -> None:
    request = cds_request()
    assert_valid(REQ, request)
    assert_valid(f"context-{request['hook']}.json", request["context"])


# --------------------------------------------------------------------------- context schemas

SELECT = "context-order-select.json"
SIGN = "context-order-sign.json"


def test_order_select_context_is_valid() -> None:
    assert_valid(SELECT, order_select_context())


def test_order_sign_context_is_valid() -> None:
    assert_valid(SIGN, order_sign_context())


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda d: d.pop("encounterId"), id="no-encounter"),
        pytest.param(lambda d: d.update(userId="PractitionerRole/role-1"), id="practitioner-role-user"),
        pytest.param(lambda d: d.update(extension={"com.example": {"x": 1}}), id="extension"),
        pytest.param(lambda d: d.update(futureField=True), id="unknown-member-tolerated"),
        # FHIR JSON leaves out empty arrays: a Bundle with no orders has no entry (answered with no cards).
        pytest.param(lambda d: d["draftOrders"].pop("entry"), id="bundle-without-entry"),
    ],
)
@pytest.mark.parametrize("schema_and_factory", [(SELECT, order_select_context), (SIGN, order_sign_context)])
def test_context_valid_variants(schema_and_factory: tuple, mutate: Mutator) -> None:
    name, factory = schema_and_factory
    assert_valid(name, run_mutation(factory, mutate))


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda d: d.pop("userId"), id="no-userId"),
        pytest.param(lambda d: d.pop("patientId"), id="no-patientId"),
        pytest.param(lambda d: d.pop("draftOrders"), id="no-draftOrders"),
        pytest.param(lambda d: d.update(userId="dr-hema"), id="userId-not-reference"),
        pytest.param(lambda d: d.update(patientId="Patient/pt-42"), id="patientId-is-reference"),
        pytest.param(lambda d: d.update(encounterId=""), id="empty-encounterId"),
        pytest.param(lambda d: d["draftOrders"].update(resourceType="Parameters"), id="draftOrders-not-bundle"),
        pytest.param(lambda d: d["draftOrders"].pop("resourceType"), id="draftOrders-no-resourceType"),
        pytest.param(lambda d: d["draftOrders"].update(entry=[]), id="bundle-empty-entry"),
        pytest.param(lambda d: d["draftOrders"]["entry"].append({"fullUrl": "urn:x"}), id="entry-without-resource"),
        pytest.param(
            lambda d: d["draftOrders"]["entry"].append({"resource": {"id": "x"}}),
            id="resource-no-resourceType",
        ),
        pytest.param(lambda d: d.update(draftOrders=[]), id="draftOrders-array"),
    ],
)
@pytest.mark.parametrize("schema_and_factory", [(SELECT, order_select_context), (SIGN, order_sign_context)])
def test_context_invalid_variants(schema_and_factory: tuple, mutate: Mutator) -> None:
    name, factory = schema_and_factory
    assert_invalid(name, run_mutation(factory, mutate))


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda d: d.pop("selections"), id="no-selections"),
        pytest.param(lambda d: d.update(selections=[]), id="empty-selections"),
        pytest.param(lambda d: d.update(selections=["ivig-draft-1"]), id="selection-without-type"),
        pytest.param(lambda d: d.update(selections="MedicationRequest/ivig-draft-1"), id="selections-not-array"),
        pytest.param(lambda d: d.update(selections=["MedicationRequest/"]), id="selection-without-id"),
    ],
)
def test_order_select_specific_invalid_variants(mutate: Mutator) -> None:
    assert_invalid(SELECT, run_mutation(order_select_context, mutate))


def test_order_sign_does_not_need_selections() -> None:
    ctx = order_sign_context()
    assert "selections" not in ctx
    assert_valid(SIGN, ctx)
    assert_invalid(SELECT, ctx)


# --------------------------------------------------------------------------- cds-response.json

RESP = "cds-response.json"


def test_response_full_example_is_valid() -> None:
    assert_valid(RESP, cds_response())


def test_empty_cards_is_valid() -> None:
    assert_valid(RESP, {"cards": []})


def first_card(d: dict[str, Any]) -> dict[str, Any]:
    return d["cards"][0]


def first_action(d: dict[str, Any]) -> dict[str, Any]:
    return first_card(d)["suggestions"][0]["actions"][0]


def delete_action(d: dict[str, Any]) -> dict[str, Any]:
    return first_card(d)["suggestions"][1]["actions"][0]


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda d: first_card(d).update(summary="x" * 140), id="summary-140-chars"),
        pytest.param(lambda d: first_card(d).update(selectionBehavior="any"), id="selection-any"),
        pytest.param(
            lambda d: (
                first_card(d).update(selectionBehavior="any"),
                first_card(d)["suggestions"][1].update(isRecommended=True),
            ),
            id="any-allows-two-recommended",
        ),
        pytest.param(
            lambda d: first_card(d)["suggestions"][1].update(isRecommended=False),
            id="at-most-one-with-one-recommended",
        ),
        pytest.param(lambda d: d.pop("systemActions"), id="no-systemActions"),
        pytest.param(
            lambda d: (first_card(d).pop("suggestions"), first_card(d).pop("selectionBehavior")),
            id="no-suggestions",
        ),
        pytest.param(lambda d: first_card(d).pop("uuid"), id="card-without-uuid"),
        pytest.param(lambda d: first_card(d)["source"]["topic"].pop("display"), id="topic-without-display"),
        pytest.param(lambda d: first_card(d)["suggestions"][0].pop("actions"), id="suggestion-without-actions"),
        pytest.param(lambda d: first_card(d)["links"][1].update(autolaunchable=True), id="autolaunchable"),
        pytest.param(lambda d: first_card(d).update(extension={"org.example": {}}), id="card-extension"),
        pytest.param(
            lambda d: d["systemActions"].append(
                {"type": "delete", "description": "drop", "resourceId": "Flag/f1/_history/2"}
            ),
            id="system-delete-versioned",
        ),
        pytest.param(
            lambda d: first_action(d).update(type="create", resource={"resourceType": "Task"}),
            id="create-action",
        ),
    ],
)
def test_response_valid_variants(mutate: Mutator) -> None:
    assert_valid(RESP, run_mutation(cds_response, mutate))


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda d: d.pop("cards"), id="no-cards"),
        pytest.param(lambda d: first_card(d).update(summary="x" * 141), id="summary-141-chars"),
        pytest.param(lambda d: first_card(d).update(summary=""), id="summary-empty"),
        pytest.param(lambda d: first_card(d).pop("summary"), id="no-summary"),
        pytest.param(lambda d: first_card(d).pop("indicator"), id="no-indicator"),
        pytest.param(lambda d: first_card(d).update(indicator="hard-stop"), id="indicator-hard-stop"),
        pytest.param(lambda d: first_card(d).update(indicator="success"), id="indicator-success"),
        pytest.param(lambda d: first_card(d).pop("source"), id="no-source"),
        pytest.param(lambda d: first_card(d)["source"].pop("label"), id="source-without-label"),
        pytest.param(lambda d: first_card(d)["source"].update(url="example.com/x"), id="source-url-relative"),
        pytest.param(lambda d: first_card(d)["source"].update(icon="not a url"), id="source-icon-not-url"),
        pytest.param(lambda d: first_card(d)["source"]["topic"].pop("code"), id="topic-without-code"),
        pytest.param(lambda d: first_card(d).pop("selectionBehavior"), id="suggestions-without-selectionBehavior"),
        pytest.param(lambda d: first_card(d).update(selectionBehavior="all"), id="selectionBehavior-unknown"),
        pytest.param(
            lambda d: first_card(d)["suggestions"][1].update(isRecommended=True),
            id="at-most-one-with-two-recommended",
        ),
        pytest.param(lambda d: first_card(d).update(suggestions=[]), id="empty-suggestions"),
        pytest.param(lambda d: first_card(d)["suggestions"][0].pop("label"), id="suggestion-without-label"),
        pytest.param(lambda d: first_card(d)["suggestions"][0].update(uuid="abc"), id="suggestion-uuid-bad"),
        pytest.param(lambda d: first_card(d)["suggestions"][0].update(isRecommended="yes"), id="isRecommended-str"),
        pytest.param(lambda d: first_card(d).update(uuid="card-1"), id="card-uuid-bad"),
        pytest.param(lambda d: first_action(d).update(type="patch"), id="action-type-unknown"),
        pytest.param(lambda d: first_action(d).pop("type"), id="action-without-type"),
        pytest.param(lambda d: first_action(d).pop("description"), id="suggestion-action-without-description"),
        pytest.param(lambda d: first_action(d).pop("resource"), id="update-without-resource"),
        pytest.param(
            lambda d: first_action(d).update(type="create", resource={"id": "x"}),
            id="create-resource-no-type",
        ),
        pytest.param(lambda d: delete_action(d).pop("resourceId"), id="delete-without-resourceId"),
        pytest.param(
            lambda d: delete_action(d).update(resourceId=["MedicationRequest/ivig-draft-1"]),
            id="delete-resourceId-array",
        ),
        pytest.param(lambda d: delete_action(d).update(resourceId="ivig-draft-1"), id="delete-resourceId-bare-id"),
        pytest.param(
            lambda d: delete_action(d).update(resource="MedicationRequest/ivig-draft-1"),
            id="delete-deprecated-resource-string",
        ),
        pytest.param(
            lambda d: (
                delete_action(d).pop("resourceId"),
                delete_action(d).update(resource=ivig_request_resource()),
            ),
            id="delete-with-resource-object",
        ),
        pytest.param(lambda d: first_card(d)["overrideReasons"][0].pop("display"), id="override-without-display"),
        pytest.param(lambda d: first_card(d).update(overrideReasons=[]), id="empty-overrideReasons"),
        pytest.param(lambda d: first_card(d)["links"][0].pop("type"), id="link-without-type"),
        pytest.param(lambda d: first_card(d)["links"][0].pop("url"), id="link-without-url"),
        pytest.param(lambda d: first_card(d)["links"][0].update(type="relative"), id="link-type-unknown"),
        pytest.param(lambda d: first_card(d)["links"][0].update(appContext="x"), id="absolute-link-appContext"),
        pytest.param(lambda d: first_card(d).update(selection_behavior="any"), id="card-unknown-member"),
        pytest.param(lambda d: d.update(card=[]), id="response-unknown-member"),
        pytest.param(lambda d: d.update(systemActions=[]), id="empty-systemActions"),
        pytest.param(lambda d: d["systemActions"][0].pop("resource"), id="system-create-without-resource"),
        pytest.param(lambda d: first_card(d).update(extension=[1]), id="extension-not-object"),
    ],
)
def test_response_invalid_variants(mutate: Mutator) -> None:
    assert_invalid(RESP, run_mutation(cds_response, mutate))


# --------------------------------------------------------------------------- feedback-request.json

FEEDBACK = "feedback-request.json"


def first_feedback(d: dict[str, Any]) -> dict[str, Any]:
    return d["feedback"][0]


def override_feedback(d: dict[str, Any]) -> dict[str, Any]:
    return d["feedback"][1]


def test_feedback_example_is_valid() -> None:
    assert_valid(FEEDBACK, feedback())


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda d: override_feedback(d).pop("overrideReason"), id="overridden-without-reason"),
        pytest.param(lambda d: override_feedback(d)["overrideReason"].pop("reason"), id="comment-only"),
        pytest.param(lambda d: override_feedback(d)["overrideReason"].pop("userComment"), id="coded-reason-only"),
        pytest.param(lambda d: first_feedback(d).update(outcomeTimestamp="2025-03-04T11:15:30+01:00"), id="offset"),
        pytest.param(lambda d: d.update(extension={"com.example": True}), id="extension"),
    ],
)
def test_feedback_valid_variants(mutate: Mutator) -> None:
    assert_valid(FEEDBACK, run_mutation(feedback, mutate))


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda d: first_feedback(d).update(outcome="maybe"), id="outcome-maybe"),
        pytest.param(lambda d: first_feedback(d).pop("outcome"), id="no-outcome"),
        pytest.param(lambda d: first_feedback(d).pop("card"), id="no-card"),
        pytest.param(lambda d: first_feedback(d).update(card="card-1"), id="card-not-uuid"),
        pytest.param(lambda d: first_feedback(d).pop("outcomeTimestamp"), id="no-timestamp"),
        pytest.param(lambda d: first_feedback(d).update(outcomeTimestamp="2025-03-04"), id="timestamp-date-only"),
        pytest.param(lambda d: first_feedback(d).update(outcomeTimestamp="2025-03-04 10:15:30Z"), id="timestamp-space"),
        pytest.param(
            lambda d: first_feedback(d).update(outcomeTimestamp="2025-03-04T10:15:30"),
            id="timestamp-no-offset",
        ),
        pytest.param(
            lambda d: first_feedback(d).update(outcomeTimestamp="2025-13-04T10:15:30Z"),
            id="timestamp-month-13",
        ),
        pytest.param(lambda d: first_feedback(d).pop("acceptedSuggestions"), id="accepted-without-suggestions"),
        pytest.param(lambda d: first_feedback(d).update(acceptedSuggestions=[]), id="accepted-empty-suggestions"),
        pytest.param(lambda d: first_feedback(d).update(acceptedSuggestions=[{}]), id="accepted-suggestion-no-id"),
        pytest.param(
            lambda d: first_feedback(d).update(acceptedSuggestions=[SUGGESTION_UUID]),
            id="accepted-suggestion-str",
        ),
        pytest.param(lambda d: override_feedback(d).update(overrideReason={}), id="empty-overrideReason"),
        pytest.param(
            lambda d: override_feedback(d)["overrideReason"]["reason"].pop("system"),
            id="reason-without-system",
        ),
        pytest.param(lambda d: d.update(feedback=[]), id="empty-feedback"),
        pytest.param(lambda d: d.pop("feedback"), id="no-feedback"),
    ],
)
def test_feedback_invalid_variants(mutate: Mutator) -> None:
    assert_invalid(FEEDBACK, run_mutation(feedback, mutate))


# --------------------------------------------------------------------------- discovery-response.json

DISCOVERY = "discovery-response.json"


def test_discovery_example_is_valid() -> None:
    assert_valid(DISCOVERY, discovery())


def test_discovery_without_services_is_valid() -> None:
    assert_valid(DISCOVERY, {"services": []})


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda d: d.pop("services"), id="no-services"),
        pytest.param(lambda d: d["services"][0].pop("hook"), id="no-hook"),
        pytest.param(lambda d: d["services"][0].pop("id"), id="no-id"),
        pytest.param(lambda d: d["services"][0].pop("description"), id="no-description"),
        pytest.param(lambda d: d["services"][0].update(id="ivig/select"), id="id-with-slash"),
        pytest.param(lambda d: d["services"][0].update(prefetch={"patient": {"q": 1}}), id="prefetch-not-string"),
        pytest.param(lambda d: d["services"][0].update(prefetch={}), id="prefetch-empty"),
        pytest.param(lambda d: d["services"][0].update(usageRequirements=3), id="usage-not-string"),
        pytest.param(lambda d: d["services"][0].update(name="x"), id="unknown-member"),
    ],
)
def test_discovery_invalid_variants(mutate: Mutator) -> None:
    assert_invalid(DISCOVERY, run_mutation(discovery, mutate))


def test_discovery_service_extension_is_allowed() -> None:
    doc = discovery()
    doc["services"][1]["extension"] = {"com.example.conformance": "https://example.org/c"}
    assert_valid(DISCOVERY, doc)
