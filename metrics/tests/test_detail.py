import datetime

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from healthtrack.cache import user_data_version
from healthtrack.models import AuditEvent
from metrics.models import HealthMetric
from metrics.serializers import HealthMetricSerializer
from metrics.tests.factories import BloodPressureFactory, HealthMetricFactory
from metrics.tests.helpers import detail_url
from users.services import auth_tokens_issue
from users.tests.factories import ClinicianFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def metric(user):
    return HealthMetricFactory(user=user, metric_type="weight", value=80.0, notes="morning")


def _snapshot(metric_id):
    return HealthMetric.objects.filter(pk=metric_id).values().first()


def test_owner_reads_sample(auth_client, metric):
    response = auth_client.get(detail_url(metric.pk))
    assert response.status_code == 200
    assert response.json() == HealthMetricSerializer(metric).data
    event = AuditEvent.objects.get()
    assert (event.action, event.subject_id, event.object_ids) == ("read", metric.user_id, [str(metric.pk)])


def test_patch_changes_value_with_unit(auth_client, user, metric, goal_calls):
    before = user_data_version(user.pk)
    response = auth_client.patch(detail_url(metric.pk), {"value": 176.37, "unit": "lb"}, format="json")

    assert response.status_code == 200, response.json()
    metric.refresh_from_db()
    assert metric.value == pytest.approx(80.0, abs=0.001) and metric.unit == "kg"
    assert metric.notes == "morning"  # untouched
    assert user_data_version(user.pk) != before
    assert goal_calls == [(user.pk, ["weight"])]
    assert AuditEvent.objects.get().action == "update"


def test_patch_out_of_range_is_400_and_nothing_changes(auth_client, metric):
    before = _snapshot(metric.pk)
    response = auth_client.patch(detail_url(metric.pk), {"value": 900}, format="json")
    assert response.status_code == 400
    assert "between 2 and 500 kg" in response.json()["errors"]["value"][0]
    assert _snapshot(metric.pk) == before


def test_patch_notes_the_database_cannot_store_is_400_and_nothing_changes(auth_client, metric):
    before = _snapshot(metric.pk)
    body = '{"notes": "a\\u0000b"}'  # raw JSON: the escape reaches the server as it is
    response = auth_client.patch(detail_url(metric.pk), body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"notes": ["Null characters are not allowed."]}
    assert _snapshot(metric.pk) == before


def test_patch_metric_type_rechecks_unit_of_stored_value(auth_client, metric):
    response = auth_client.patch(detail_url(metric.pk), {"metric_type": "steps"}, format="json")
    assert response.status_code == 400
    assert "stored value is in kg, which steps does not accept" in response.json()["errors"]["value"][0]
    # With a value for the new type it works, and the unit follows the type.
    response = auth_client.patch(detail_url(metric.pk), {"metric_type": "steps", "value": 900}, format="json")
    assert response.status_code == 200
    assert response.json()["unit"] == "count"


def test_patch_metric_type_rechecks_range_of_stored_value(auth_client, user):
    heart = HealthMetricFactory(user=user, metric_type="heart_rate", value=240)
    ok = HealthMetricFactory(user=user, metric_type="heart_rate", value=58)
    response = auth_client.patch(detail_url(heart.pk), {"metric_type": "blood_glucose"}, format="json")
    assert response.status_code == 400
    response = auth_client.patch(detail_url(ok.pk), {"metric_type": "resting_heart_rate"}, format="json")
    assert response.status_code == 200
    assert response.json()["metric_type"] == "resting_heart_rate"


def test_patch_exercise_to_sleep_converts_stored_minutes(auth_client, user, goal_calls):
    exercise = HealthMetricFactory(user=user, metric_type="exercise", value=90)
    response = auth_client.patch(detail_url(exercise.pk), {"metric_type": "sleep"}, format="json")
    assert response.status_code == 200
    assert (response.json()["value"], response.json()["unit"]) == (1.5, "h")
    assert goal_calls == [(user.pk, ["exercise", "sleep"])]


def test_patch_blood_pressure_keeps_rule_on_whole_sample(auth_client, user):
    bp = BloodPressureFactory(user=user, value=120)  # over 80
    response = auth_client.patch(detail_url(bp.pk), {"value": 75}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"]["secondary_value"] == [
        "Diastolic (80 mmHg) must be lower than systolic (75 mmHg)."
    ]


def test_changing_blood_pressure_to_another_type_drops_diastolic(auth_client, user):
    bp = BloodPressureFactory(user=user, value=120)
    response = auth_client.patch(detail_url(bp.pk), {"metric_type": "heart_rate", "value": 70}, format="json")
    assert response.status_code == 200
    assert response.json()["secondary_value"] is None


def test_unit_alone_is_400(auth_client, metric):
    response = auth_client.patch(detail_url(metric.pk), {"unit": "lb"}, format="json")
    assert response.status_code == 400
    assert "Send unit together with value" in response.json()["errors"]["unit"][0]


@pytest.mark.parametrize(("field", "value"), [("source", "fitbit"), ("external_id", "other")])
def test_sync_identity_cannot_change(auth_client, user, field, value):
    metric = HealthMetricFactory(user=user, source="apple_health", external_id="HK-9")
    before = _snapshot(metric.pk)
    response = auth_client.patch(detail_url(metric.pk), {field: value}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][field] == [
        "Cannot be changed after creation: it is the sample's sync identity."
    ]
    assert _snapshot(metric.pk) == before


def test_put_round_trip_of_get_body(auth_client, user):
    metric = HealthMetricFactory(user=user, source="apple_health", external_id="HK-9", value=4000)
    body = auth_client.get(detail_url(metric.pk)).json()
    body["value"] = 4321
    response = auth_client.put(detail_url(metric.pk), body, format="json")
    assert response.status_code == 200, response.json()
    metric.refresh_from_db()
    assert metric.value == 4321 and metric.external_id == "HK-9"


def test_put_requires_type_and_value(auth_client, metric):
    response = auth_client.put(detail_url(metric.pk), {"notes": "x"}, format="json")
    assert response.status_code == 400
    assert {"metric_type", "value"} <= set(response.json()["errors"])


def test_put_can_move_recorded_at_but_not_into_the_future(auth_client, metric):
    earlier = (timezone.now() - datetime.timedelta(days=2)).replace(microsecond=0)
    response = auth_client.put(
        detail_url(metric.pk),
        {"metric_type": "weight", "value": 79, "recorded_at": earlier.isoformat()},
        format="json",
    )
    assert response.status_code == 200
    metric.refresh_from_db()
    assert metric.recorded_at == earlier
    future = (timezone.now() + datetime.timedelta(hours=1)).isoformat()
    response = auth_client.patch(detail_url(metric.pk), {"recorded_at": future}, format="json")
    assert response.status_code == 400


def test_delete_removes_sample_and_invalidates(auth_client, user, metric, goal_calls):
    before = user_data_version(user.pk)
    response = auth_client.delete(detail_url(metric.pk))
    assert response.status_code == 204
    assert not HealthMetric.objects.exists()
    assert user_data_version(user.pk) != before
    assert goal_calls == [(user.pk, ["weight"])]
    event = AuditEvent.objects.get()
    assert (event.action, event.object_ids) == ("delete", [str(metric.pk)])


# --- Who may do what ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("get", None),
        ("put", {"metric_type": "weight", "value": 60}),
        ("patch", {"value": 60}),
        ("delete", None),
    ],
)
def test_another_users_sample_is_404_and_unchanged(other_client, other_user, metric, method, body):
    before = _snapshot(metric.pk)
    response = getattr(other_client, method)(detail_url(metric.pk), body, format="json")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}
    assert _snapshot(metric.pk) == before
    event = AuditEvent.objects.get()
    assert (event.action, event.actor_id, event.subject_id) == ("denied", other_user.pk, metric.user_id)


def test_care_team_clinician_reads_but_cannot_write(clinician_client, metric):
    assert clinician_client.get(detail_url(metric.pk)).status_code == 200
    before = _snapshot(metric.pk)
    assert clinician_client.patch(detail_url(metric.pk), {"value": 60}, format="json").status_code == 404
    assert (
        clinician_client.put(detail_url(metric.pk), {"metric_type": "weight", "value": 60}).status_code == 404
    )
    assert clinician_client.delete(detail_url(metric.pk)).status_code == 404
    assert _snapshot(metric.pk) == before


def test_clinician_outside_care_team_cannot_read(make_client, metric):
    assert make_client(ClinicianFactory()).get(detail_url(metric.pk)).status_code == 404


def test_superuser_may_edit(admin_client, metric):
    response = admin_client.patch(detail_url(metric.pk), {"value": 81}, format="json")
    assert response.status_code == 200
    assert admin_client.delete(detail_url(metric.pk)).status_code == 204


@pytest.mark.parametrize("metric_id", ["999999", str(2**70)])
def test_missing_or_huge_id_is_plain_404(auth_client, metric_id):
    response = auth_client.get(detail_url(metric_id))
    assert response.status_code == 404
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_write_to_malformed_id_is_json_404_even_with_csrf_checks(user, method):
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {auth_tokens_issue(user=user)['access']}")
    response = getattr(client, method)(detail_url("abc"), {"value": 1}, format="json")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


def test_get_query_count(auth_client, metric, django_assert_num_queries):
    auth_client.get("/api/v1/users/me")
    with django_assert_num_queries(2):  # the sample + audit row
        assert auth_client.get(detail_url(metric.pk)).status_code == 200
