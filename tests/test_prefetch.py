from __future__ import annotations

import pytest

from cds_service.prefetch import PrefetchTemplateError, render


def test_fills_context_tokens():
    assert render("Patient/{{context.patientId}}", {"patientId": "123"}) == "Patient/123"


def test_values_are_percent_encoded_so_they_cannot_add_parameters():
    rendered = render("Observation?patient={{context.patientId}}&code=x", {"patientId": "1&_include=*"})
    assert rendered == "Observation?patient=1%26_include%3D%2A&code=x"


def test_user_tokens_come_from_user_id():
    context = {"userId": "Practitioner/abc"}
    assert render("Practitioner/{{userPractitionerId}}", context) == "Practitioner/abc"


def test_absent_context_field_has_an_exact_message():
    with pytest.raises(PrefetchTemplateError) as error:
        render("Encounter/{{context.encounterId}}", {"patientId": "1"})
    assert str(error.value) == "prefetch token {{context.encounterId}}: context.encounterId is absent"


def test_non_scalar_context_field_is_refused():
    with pytest.raises(PrefetchTemplateError, match="not a scalar"):
        render("{{context.draftOrders}}", {"draftOrders": {"resourceType": "Bundle"}})


def test_unknown_token_is_refused():
    with pytest.raises(PrefetchTemplateError) as error:
        render("Patient/{{patient}}", {})
    assert str(error.value) == "prefetch token {{patient}} is not defined by CDS Hooks"


def test_user_token_of_the_wrong_type_is_refused():
    with pytest.raises(PrefetchTemplateError, match="not a Practitioner"):
        render("{{userPractitionerId}}", {"userId": "Patient/1"})
