"""GET /api/v1/users/me/export: everything stored about the caller, streamed."""

from __future__ import annotations

import json

import jsonschema
import pytest
from django.http import StreamingHttpResponse

from goals.models import HealthGoal
from healthtrack.models import AuditEvent
from insights.models import HealthInsight
from interop.tests.factories import (
    AuditEventFactory,
    HealthGoalFactory,
    HealthInsightFactory,
    HealthMetricFactory,
    NutritionLogFactory,
)
from interop.tests.test_fhir_export import refuse_materialising
from metrics.models import HealthMetric
from nutrition.models import NutritionLog
from users.models import CareTeamMembership
from users.tests.factories import CareTeamMembershipFactory, ClinicianFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/users/me/export"


def read_export(response) -> dict:
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    assert "attachment" in response["Content-Disposition"]
    return json.loads(b"".join(response.streaming_content))


@pytest.fixture
def full_account(user, other_user):
    """One of everything for ``user``, and some data of someone else that must not leak."""
    clinician = ClinicianFactory(first_name="Grace", last_name="Hopper")
    CareTeamMembershipFactory(patient=user, clinician=clinician)
    data = {
        "metric": HealthMetricFactory(user=user, metric_type="blood_pressure", notes="Left arm"),
        "nutrition": NutritionLogFactory(user=user),
        "goal": HealthGoalFactory(user=user),
        "insight": HealthInsightFactory(user=user, created_by=clinician),
        "clinician": clinician,
        "clinician_read": AuditEventFactory(actor=clinician, subject=user, ip="198.51.100.4"),
        "own_read": AuditEventFactory(actor=user, subject=user, ip="203.0.113.7"),
    }
    HealthMetricFactory(user=other_user)
    NutritionLogFactory(user=other_user)
    AuditEventFactory(actor=other_user, subject=other_user)
    return data


def test_export_holds_everything_about_the_person(auth_client, user, full_account):
    document = read_export(auth_client.get(URL))
    assert document["format"] == "healthtrack.personal-data-export"
    assert document["user_id"] == user.pk

    profile = document["profile"]
    assert profile["id"] == user.pk and profile["email"] == user.email
    assert profile["date_of_birth"] == "1988-04-12"  # decrypted
    assert profile["medical_history"] == "Asthma since childhood."
    assert "password" not in json.dumps(document)

    (metric,) = document["health_metrics"]
    assert metric == {
        "id": full_account["metric"].pk,
        "user_id": user.pk,
        "metric_type": "blood_pressure",
        "value": 121.0,
        "secondary_value": 79.0,
        "unit": "mmHg",
        "recorded_at": full_account["metric"].recorded_at.isoformat().replace("+00:00", "Z"),
        "source": "manual",
        "external_id": None,
        "notes": "Left arm",
        "created_at": metric["created_at"],
    }

    (log,) = document["nutrition_logs"]
    assert (log["id"], log["meal_type"], log["calories"], log["water_ml"]) == (
        full_account["nutrition"].pk,
        "lunch",
        420.0,
        None,
    )
    (goal,) = document["health_goals"]
    assert (goal["id"], goal["target_value"], goal["target_date"]) == (
        full_account["goal"].pk,
        10000.0,
        "2024-06-01",
    )
    (insight,) = document["health_insights"]
    assert insight["action_steps"] == ["Take a 10-minute walk after lunch."]
    assert insight["evidence"] == {"average_steps": 4120, "days": 30}
    assert insight["created_by_id"] == full_account["clinician"].pk

    (membership,) = document["care_team"]
    assert membership["role"] == "patient"
    assert (membership["clinician_username"], membership["clinician_last_name"]) == (
        full_account["clinician"].username,
        "Hopper",
    )


def test_audit_events_about_the_person_hide_other_actors_addresses(auth_client, user, full_account):
    document = read_export(auth_client.get(URL))
    events = {event["id"]: event for event in document["audit_events"]}
    clinician_read = events[full_account["clinician_read"].pk]
    assert clinician_read["actor_id"] == full_account["clinician"].pk
    assert clinician_read["actor_username"] == full_account["clinician"].username
    assert clinician_read["ip"] is None and clinician_read["user_agent"] is None
    own = events[full_account["own_read"].pk]
    assert own["ip"] == "203.0.113.7" and own["user_agent"] == "Tests/1.0"
    # The export itself is on the trail it exports (written before the body streams).
    assert events[max(events)]["action"] == "export"
    assert {event["actor_id"] for event in document["audit_events"]} <= {
        user.pk,
        full_account["clinician"].pk,
    }


def test_nothing_of_other_people(auth_client, user, other_user, full_account):
    document = read_export(auth_client.get(URL))
    for section in ("health_metrics", "nutrition_logs", "health_goals", "health_insights"):
        assert {row["user_id"] for row in document[section]} == {user.pk}


def test_a_clinician_sees_their_patients_memberships(make_client):
    membership = CareTeamMembershipFactory()
    document = read_export(make_client(membership.clinician).get(URL))
    (row,) = document["care_team"]
    assert (row["role"], row["patient_id"]) == ("clinician", membership.patient_id)


def test_export_is_audited_once(auth_client, user, full_account):
    before = AuditEvent.objects.count()
    read_export(auth_client.get(URL))
    assert AuditEvent.objects.count() == before + 1
    event = AuditEvent.objects.latest("id")
    assert (event.action, event.resource_type, event.subject_id, event.actor_id) == (
        "export",
        "personal_data",
        user.pk,
        user.pk,
    )


def test_empty_account_has_every_section(auth_client):
    document = read_export(auth_client.get(URL))
    for section in ("health_metrics", "nutrition_logs", "health_goals", "health_insights", "care_team"):
        assert document[section] == []
    assert document["account"]["roles"] == []


def test_anonymous_is_401(api_client):
    assert api_client.get(URL).status_code == 401


def test_document_matches_the_openapi_schema(auth_client, api_client, full_account):
    schema = api_client.get("/api/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"][URL]["get"]
    body_schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    document = read_export(auth_client.get(URL))
    validator = jsonschema.Draft202012Validator(
        _nullable_to_json_schema({**body_schema, "components": schema["components"]})
    )
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]
    # The check has teeth: a wrong type or a missing field is caught.
    document["health_metrics"][0]["value"] = "121"
    del document["care_team"][0]["role"]
    assert len(list(validator.iter_errors(document))) == 2


def _nullable_to_json_schema(node):
    """OpenAPI 3.0 ``nullable`` → JSON Schema."""
    if isinstance(node, list):
        return [_nullable_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _nullable_to_json_schema(value) for key, value in node.items()}
    if node.pop("nullable", False):
        if "type" in node:
            node["type"] = [node["type"], "null"]
        if "enum" in node:
            node["enum"] = [*node["enum"], None]
        if "allOf" in node or "$ref" in node:
            node = {"anyOf": [node, {"type": "null"}]}
    return node


def test_query_count_does_not_grow_with_rows(auth_client, user, django_assert_num_queries):
    auth_client.get("/api/v1/users/me")  # warm the auth snapshot
    HealthMetricFactory(user=user)

    def consume():
        # user + profile, roles, six sections, audit insert
        with django_assert_num_queries(9):
            return json.loads(b"".join(auth_client.get(URL).streaming_content))

    small = consume()
    HealthMetricFactory.create_batch(40, user=user)
    NutritionLogFactory.create_batch(20, user=user)
    HealthInsightFactory.create_batch(5, user=user, created_by=ClinicianFactory())
    large = consume()
    assert len(small["health_metrics"]) == 1 and len(large["health_metrics"]) == 41


def test_sections_are_streamed_never_materialised(auth_client, user, full_account):
    with refuse_materialising(
        HealthMetric, NutritionLog, HealthGoal, HealthInsight, CareTeamMembership, AuditEvent
    ):
        response = auth_client.get(URL)
        document = json.loads(b"".join(response.streaming_content))
    assert len(document["health_metrics"]) == 1
