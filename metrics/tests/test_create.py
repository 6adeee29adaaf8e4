import datetime

import pytest
from django.db import DatabaseError, IntegrityError, connection
from django.utils import timezone

from goals.tests.factories import HealthGoalFactory, WeightLossGoalFactory
from healthtrack.cache import user_data_version
from healthtrack.models import AuditEvent
from metrics import selectors
from metrics.models import HealthMetric
from metrics.serializers import HealthMetricSerializer
from metrics.tests.factories import HealthMetricFactory
from metrics.tests.helpers import METRICS
from users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

# type, canonical input, (input in another unit, its unit, expected canonical), out of range, range text
TYPE_CASES = [
    ("heart_rate", 72, (72, "beats/min", 72), 251, "between 20 and 250 bpm"),
    ("resting_heart_rate", 58, (58, "/MIN", 58), 19, "between 20 and 250 bpm"),
    ("steps", 8000, (8000, "Steps", 8000), 100_001, "between 0 and 100000 count"),
    ("sleep", 7.5, (450, "min", 7.5), 24.5, "between 0 and 24 h"),
    ("weight", 70, (150, "lb", 68.038855), 501, "between 2 and 500 kg"),
    ("blood_glucose", 100, (5.5, "mmol/L", 99.088), 1001, "between 10 and 1000 mg/dL"),
    ("exercise", 30, (1.5, "h", 90), 1441, "between 0 and 1440 min"),
    ("oxygen_saturation", 97, (0.97, "fraction", 97), 101, "between 50 and 100 %"),
    ("body_temperature", 37, (98.6, "°F", 37), 45.5, "between 30 and 45 °C"),
    ("blood_pressure", 120, (16, "kpa", 120.009872), 261, "between 50 and 260 mmHg"),
]
SECONDARY = {"blood_pressure": 80}


def _body(metric_type, value, **extra):
    body = {"metric_type": metric_type, "value": value, **extra}
    if metric_type in SECONDARY and "secondary_value" not in extra:
        body["secondary_value"] = SECONDARY[metric_type]
    return body


@pytest.mark.parametrize(("metric_type", "value", "converted", "too_far", "range_text"), TYPE_CASES)
def test_valid_value_is_stored_in_canonical_unit(
    auth_client, user, metric_type, value, converted, too_far, range_text
):
    response = auth_client.post(METRICS, _body(metric_type, value), format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    stored = HealthMetric.objects.get()
    assert (stored.user_id, stored.metric_type, stored.value) == (user.pk, metric_type, value)
    assert stored.unit == body["unit"] == range_text.rsplit(" ", 1)[1]
    assert body["value"] == value and body["user_id"] == user.pk
    assert stored.source == "manual" and stored.external_id is None


@pytest.mark.parametrize(("metric_type", "value", "converted", "too_far", "range_text"), TYPE_CASES)
def test_other_unit_is_converted(auth_client, metric_type, value, converted, too_far, range_text):
    raw, unit, expected = converted
    extra = {"unit": unit}
    if metric_type == "blood_pressure":
        extra["secondary_value"] = 10.6658  # kPa = 80.0 mmHg
    response = auth_client.post(METRICS, _body(metric_type, raw, **extra), format="json")

    assert response.status_code == 201, response.json()
    stored = HealthMetric.objects.get()
    assert stored.value == pytest.approx(expected, abs=1e-6)
    assert stored.unit == range_text.rsplit(" ", 1)[1]
    if metric_type == "blood_pressure":
        assert stored.secondary_value == pytest.approx(80.0, abs=0.001)


@pytest.mark.parametrize(("metric_type", "value", "converted", "too_far", "range_text"), TYPE_CASES)
def test_out_of_range_value_is_400_naming_field_and_range(
    auth_client, metric_type, value, converted, too_far, range_text
):
    response = auth_client.post(METRICS, _body(metric_type, too_far), format="json")

    assert response.status_code == 400
    body = response.json()
    assert list(body["errors"]) == ["value"]
    assert range_text in body["errors"]["value"][0]
    assert body["detail"].startswith("value: ")
    assert not HealthMetric.objects.exists()


def test_out_of_range_after_conversion_names_input_unit(auth_client):
    response = auth_client.post(
        METRICS, {"metric_type": "weight", "value": 1200, "unit": "lb"}, format="json"
    )

    assert response.status_code == 400
    message = response.json()["errors"]["value"][0]
    assert message == "weight must be between 2 and 500 kg; 1200 lb is 544.311 kg."


def test_fahrenheit_fever_is_converted_and_too_hot_refused(auth_client):
    assert (
        auth_client.post(
            METRICS, {"metric_type": "body_temperature", "value": 102.2, "unit": "F"}
        ).status_code
        == 201
    )
    assert HealthMetric.objects.get().value == pytest.approx(39.0)
    response = auth_client.post(METRICS, {"metric_type": "body_temperature", "value": 200, "unit": "°F"})
    assert "200 °F is 93.3333 °C" in response.json()["errors"]["value"][0]


def test_defaults_recorded_at_now_source_manual_canonical_unit(auth_client):
    before = timezone.now()
    response = auth_client.post(METRICS, {"metric_type": "steps", "value": 10}, format="json")
    after = timezone.now()

    body = response.json()
    assert body["unit"] == "count" and body["source"] == "manual" and body["notes"] == ""
    assert body["secondary_value"] is None and body["external_id"] is None
    assert before <= HealthMetric.objects.get().recorded_at <= after
    assert body["recorded_at"].endswith("Z")


def test_response_matches_documented_serializer(auth_client):
    response = auth_client.post(
        METRICS,
        {"metric_type": "blood_pressure", "value": 118, "secondary_value": 76, "notes": "after run"},
        format="json",
    )
    stored = HealthMetric.objects.get()
    assert response.json() == HealthMetricSerializer(stored).data


def test_recorded_at_with_offset_is_stored_in_utc(auth_client):
    response = auth_client.post(
        METRICS,
        {"metric_type": "steps", "value": 10, "recorded_at": "2026-01-10T08:00:00+09:00"},
        format="json",
    )
    assert response.json()["recorded_at"] == "2026-01-09T23:00:00Z"


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"value": 10}, "metric_type", "This field is required; choose one of: heart_rate, "),
        (
            {"metric_type": "mood", "value": 3},
            "metric_type",
            "'mood' is not a metric type; choose one of: heart_rate",
        ),
        ({"metric_type": "steps"}, "value", "This field is required: a number between 0 and 100000 count."),
        ({"metric_type": "steps", "value": None}, "value", "may not be null"),
        ({"metric_type": "steps", "value": "many"}, "value", "A number is required."),
        ({"metric_type": "steps", "value": True}, "value", "not a boolean"),
        (
            {"metric_type": "steps", "value": 1, "recorded_at": "0001-01-01T00:00:00+01:00"},
            "recorded_at",
            "range",
        ),
        ({"metric_type": "steps", "value": 1, "recorded_at": 1700000000}, "recorded_at", "ISO 8601"),
        (
            {"metric_type": "weight", "value": 70, "unit": "stone"},
            "unit",
            "accepted (case-insensitive): kg, lb, lbs",
        ),
        ({"metric_type": "steps", "value": 10, "unit": 5}, "unit", "is not a unit of steps"),
        (
            {"metric_type": "steps", "value": 10, "source": "fitbitz"},
            "source",
            "choose one of: manual, apple_health",
        ),
        (
            {"metric_type": "steps", "value": 10, "external_id": "x" * 129},
            "external_id",
            "at most 128 characters",
        ),
        ({"metric_type": "steps", "value": 10, "external_id": 1.5}, "external_id", "A string"),
        ({"metric_type": "steps", "value": 10, "notes": "n" * 2001}, "notes", "at most 2000 characters"),
        ({"metric_type": "steps", "value": 10, "notes": 5}, "notes", "A string is required."),
        ({"metric_type": "steps", "value": 10, "is_staff": True}, "is_staff", "Unknown field"),
        ({"metric_type": "steps", "value": 10, "recorded_at": "yesterday"}, "recorded_at", "not an ISO 8601"),
        (
            {"metric_type": "steps", "value": 10, "recorded_at": "2026-01-01T10:00:00"},
            "recorded_at",
            "UTC offset",
        ),
        (
            {"metric_type": "steps", "value": 10, "recorded_at": "1899-12-31T00:00:00Z"},
            "recorded_at",
            "1900-01-01",
        ),
        (
            {"metric_type": "steps", "value": 10, "secondary_value": 5},
            "secondary_value",
            "steps has no secondary value",
        ),
    ],
)
def test_invalid_input_is_400_naming_the_field(auth_client, body, field, fragment):
    response = auth_client.post(METRICS, body, format="json")

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert field in errors, errors
    assert fragment in " ".join(errors[field])
    assert not HealthMetric.objects.exists()


def test_body_must_be_an_object(auth_client):
    response = auth_client.post(METRICS, [1, 2], format="json")
    assert response.status_code == 400
    assert "non_field_errors" in response.json()["errors"]


@pytest.mark.parametrize("value", ["1e999", str(10**400)])
def test_non_finite_or_huge_numbers_are_400(auth_client, value):
    response = auth_client.post(
        METRICS, b'{"metric_type": "steps", "value": %s}' % value.encode(), content_type="application/json"
    )
    assert response.status_code == 400
    assert "value" in response.json()["errors"]
    assert not HealthMetric.objects.exists()


def test_numeric_string_is_accepted(auth_client):
    assert (
        auth_client.post(METRICS, {"metric_type": "steps", "value": " 12 "}, format="json").status_code == 201
    )
    assert HealthMetric.objects.get().value == 12


# --- Blood pressure ------------------------------------------------------------------


def test_blood_pressure_needs_diastolic(auth_client):
    response = auth_client.post(METRICS, {"metric_type": "blood_pressure", "value": 120}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"]["secondary_value"] == [
        "Required for blood_pressure: the diastolic pressure, between 30 and 180 mmHg."
    ]


@pytest.mark.parametrize("diastolic", [120, 130])
def test_diastolic_must_be_below_systolic(auth_client, diastolic):
    response = auth_client.post(
        METRICS, {"metric_type": "blood_pressure", "value": 120, "secondary_value": diastolic}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"]["secondary_value"] == [
        f"Diastolic ({diastolic} mmHg) must be lower than systolic (120 mmHg)."
    ]


def test_diastolic_out_of_range(auth_client):
    response = auth_client.post(
        METRICS, {"metric_type": "blood_pressure", "value": 250, "secondary_value": 190}, format="json"
    )
    assert response.json()["errors"]["secondary_value"] == [
        "diastolic (secondary_value) must be between 30 and 180 mmHg."
    ]


def test_systolic_out_of_range_names_systolic(auth_client):
    response = auth_client.post(
        METRICS, {"metric_type": "blood_pressure", "value": 40, "secondary_value": 30}, format="json"
    )
    assert response.json()["errors"] == {"value": ["systolic (value) must be between 50 and 260 mmHg."]}


# --- recorded_at in the future -------------------------------------------------------------


def test_recorded_at_more_than_five_minutes_ahead_is_400(auth_client):
    ahead = (timezone.now() + datetime.timedelta(minutes=6)).isoformat()
    response = auth_client.post(
        METRICS, {"metric_type": "steps", "value": 1, "recorded_at": ahead}, format="json"
    )
    assert response.status_code == 400
    assert "more than 5 minutes in the future" in response.json()["errors"]["recorded_at"][0]


def test_recorded_at_a_little_ahead_is_accepted(auth_client):
    # A phone's clock slightly ahead of ours is normal.
    ahead = (timezone.now() + datetime.timedelta(minutes=4)).isoformat()
    response = auth_client.post(
        METRICS, {"metric_type": "steps", "value": 1, "recorded_at": ahead}, format="json"
    )
    assert response.status_code == 201


# --- Sync without duplicates -----------------------------------------------------------


def test_repost_with_same_source_and_external_id_returns_stored_sample(auth_client, user):
    sample = {"metric_type": "heart_rate", "value": 61, "source": "apple_health", "external_id": "HK-1"}
    first = auth_client.post(METRICS, sample, format="json")
    version = user_data_version(user.pk)
    again = auth_client.post(METRICS, {**sample, "value": 99}, format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()  # the stored sample, unchanged
    assert HealthMetric.objects.count() == 1
    assert user_data_version(user.pk) == version  # nothing written, nothing invalidated
    assert list(AuditEvent.objects.order_by("id").values_list("action", flat=True)) == ["create", "read"]


def test_same_external_id_from_another_source_or_user_is_a_new_sample(auth_client, make_client):
    sample = {"metric_type": "steps", "value": 5, "source": "apple_health", "external_id": "same"}
    assert auth_client.post(METRICS, sample, format="json").status_code == 201
    assert auth_client.post(METRICS, {**sample, "source": "fitbit"}, format="json").status_code == 201
    assert make_client(UserFactory()).post(METRICS, sample, format="json").status_code == 201
    assert HealthMetric.objects.count() == 3


def test_samples_without_external_id_are_never_merged(auth_client):
    for _ in range(2):
        assert (
            auth_client.post(METRICS, {"metric_type": "steps", "value": 5}, format="json").status_code == 201
        )
    assert HealthMetric.objects.count() == 2


def test_concurrent_insert_of_same_sample_returns_the_stored_one(auth_client, user, monkeypatch):
    """Another request stores the sample between our look-up and our insert."""
    sample = {"metric_type": "steps", "value": 5, "source": "garmin", "external_id": "race"}
    winner = HealthMetricFactory(user=user, value=5, source="garmin", external_id="race")
    real_find = selectors.metric_find_synced
    looked_up = []

    def find_too_early(**kwargs):
        looked_up.append(kwargs)
        return None if len(looked_up) == 1 else real_find(**kwargs)

    monkeypatch.setattr(selectors, "metric_find_synced", find_too_early)
    response = auth_client.post(METRICS, sample, format="json")

    assert response.status_code == 200
    assert response.json()["id"] == winner.pk
    assert HealthMetric.objects.count() == 1
    assert len(looked_up) == 2
    # The failed insert was rolled back on its own: the request could still write its audit row.
    assert AuditEvent.objects.get().object_ids == [str(winner.pk)]


def test_integrity_error_without_external_id_is_not_swallowed(user, monkeypatch):
    from metrics import services

    def fail(**kwargs):
        raise IntegrityError("boom")

    monkeypatch.setattr(services, "_metric_insert_unfollowed", fail)
    fields = {
        "metric_type": "steps", "value": 1.0, "secondary_value": None, "unit": "count",
        "recorded_at": timezone.now(), "source": "manual", "external_id": None, "notes": "",
    }  # fmt: skip
    with pytest.raises(IntegrityError):
        services.metric_create(user_id=user.pk, fields=fields)


# --- Whose data -----------------------------------------------------------------------------


def test_user_id_param_of_self_is_accepted(auth_client, user):
    response = auth_client.post(
        f"{METRICS}?user_id={user.pk}", {"metric_type": "steps", "value": 1}, format="json"
    )
    assert response.status_code == 201
    assert HealthMetric.objects.get().user_id == user.pk


def test_posting_for_another_user_is_404_and_nothing_stored(auth_client, user, other_user):
    response = auth_client.post(
        f"{METRICS}?user_id={other_user.pk}", {"metric_type": "steps", "value": 1}, format="json"
    )
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}
    assert not HealthMetric.objects.exists()
    event = AuditEvent.objects.get()
    assert (event.action, event.actor_id, event.subject_id, event.resource_type) == (
        "denied",
        user.pk,
        other_user.pk,
        "metric",
    )


@pytest.mark.parametrize("raw", ["abc", "0", "-3", str(2**70)])
def test_malformed_user_id_param_is_404(auth_client, raw):
    response = auth_client.post(
        f"{METRICS}?user_id={raw}", {"metric_type": "steps", "value": 1}, format="json"
    )
    assert response.status_code == 404
    assert not HealthMetric.objects.exists()


def test_clinician_cannot_write_for_a_patient(clinician_client, user):
    response = clinician_client.post(
        f"{METRICS}?user_id={user.pk}", {"metric_type": "steps", "value": 1}, format="json"
    )
    assert response.status_code == 404
    assert not HealthMetric.objects.exists()


def test_superuser_may_post_for_anyone_but_not_for_no_one(admin_client, user):
    response = admin_client.post(
        f"{METRICS}?user_id={user.pk}", {"metric_type": "steps", "value": 1}, format="json"
    )
    assert response.status_code == 201
    assert HealthMetric.objects.get().user_id == user.pk
    missing = admin_client.post(
        f"{METRICS}?user_id=999999", {"metric_type": "steps", "value": 1}, format="json"
    )
    assert missing.status_code == 404
    assert HealthMetric.objects.count() == 1


def test_user_id_in_body_must_be_the_owner(auth_client, user, other_user):
    response = auth_client.post(
        METRICS, {"metric_type": "steps", "value": 1, "user_id": other_user.pk}, format="json"
    )
    assert response.status_code == 400
    assert "user_id query parameter" in response.json()["errors"]["user_id"][0]
    ok = auth_client.post(
        METRICS, {"metric_type": "steps", "value": 1, "user_id": user.pk, "id": 5}, format="json"
    )
    assert ok.status_code == 201


def test_unauthenticated_is_401(api_client):
    assert api_client.post(METRICS, {"metric_type": "steps", "value": 1}, format="json").status_code == 401


# --- Side effects ---------------------------------------------------------------------------------


def test_create_bumps_data_version_and_audits(auth_client, user):
    before = user_data_version(user.pk)
    response = auth_client.post(METRICS, {"metric_type": "weight", "value": 80}, format="json")

    assert user_data_version(user.pk) != before
    event = AuditEvent.objects.get()
    assert (event.action, event.resource_type, event.subject_id, event.status) == (
        "create",
        "metric",
        user.pk,
        201,
    )
    assert event.object_ids == [str(response.json()["id"])]


def test_goals_following_the_type_follow_the_new_sample(auth_client, user):
    weight_goal = WeightLossGoalFactory(user=user, start_value=90.0, current_value=90.0, target_value=80.0)
    step_goal = HealthGoalFactory(user=user, goal_type="step_count", metric_type="steps", unit="steps")
    other_goal = WeightLossGoalFactory(current_value=90.0)  # someone else's

    response = auth_client.post(METRICS, {"metric_type": "weight", "value": 85}, format="json")

    assert response.status_code == 201
    weight_goal.refresh_from_db()
    assert (weight_goal.current_value, weight_goal.status) == (85.0, "active")
    step_goal.refresh_from_db()
    other_goal.refresh_from_db()
    assert step_goal.current_value == 2.0 and other_goal.current_value == 90.0

    # Reaching the target completes the goal in the same request.
    auth_client.post(METRICS, {"metric_type": "weight", "value": 79.5}, format="json")
    weight_goal.refresh_from_db()
    assert (weight_goal.current_value, weight_goal.status) == (79.5, "completed")


def test_a_failing_goal_update_stores_nothing(auth_client, user, monkeypatch):
    WeightLossGoalFactory(user=user)
    before = user_data_version(user.pk)

    def fail(**kwargs):
        raise DatabaseError("goal update failed")

    monkeypatch.setattr("metrics.services.goals_follow_metrics", fail)
    response = auth_client.post(METRICS, {"metric_type": "weight", "value": 85}, format="json")
    assert response.status_code >= 500
    assert not HealthMetric.objects.exists()
    assert user_data_version(user.pk) == before


def test_invalid_post_changes_nothing(auth_client, user):
    goal = WeightLossGoalFactory(user=user)
    before = user_data_version(user.pk)
    assert auth_client.post(METRICS, {"metric_type": "weight", "value": 1}, format="json").status_code == 400
    goal.refresh_from_db()
    assert goal.current_value == 90.0 and user_data_version(user.pk) == before


def test_post_query_count(auth_client, django_assert_num_queries, django_db_setup):
    auth_client.get("/api/v1/users/me")  # warm the authentication snapshot
    # The insert (on PostgreSQL asking for the goals that follow its type in the same
    # statement, elsewhere one more query) + the audit row, plus the savepoint pair of the
    # write's transaction inside the test's own transaction.
    insert = 1 if connection.vendor == "postgresql" else 2
    with django_assert_num_queries(3 + insert):
        response = auth_client.post(METRICS, {"metric_type": "steps", "value": 1}, format="json")
    assert response.status_code == 201
    # With an external id: one look-up first.
    with django_assert_num_queries(4 + insert):
        response = auth_client.post(
            METRICS, {"metric_type": "steps", "value": 1, "external_id": "q"}, format="json"
        )
    assert response.status_code == 201
    # Re-post: the look-up and the audit row.
    with django_assert_num_queries(2):
        response = auth_client.post(
            METRICS, {"metric_type": "steps", "value": 1, "external_id": "q"}, format="json"
        )
    assert response.status_code == 200


@pytest.mark.parametrize("path", [METRICS, METRICS + "/"])
def test_trailing_slash_is_optional(auth_client, path):
    assert auth_client.post(path, {"metric_type": "steps", "value": 1}, format="json").status_code == 201


def test_long_bad_values_are_not_echoed_in_full(auth_client):
    response = auth_client.post(
        METRICS, {"metric_type": "x" * 5000, "value": 1, "source": "y" * 5000}, format="json"
    )
    errors = response.json()["errors"]
    assert errors["metric_type"][0].startswith("'" + "x" * 40 + "...' is not a metric type")
    assert len(errors["source"][0]) < 250


# Found by fuzzing: PostgreSQL text cannot hold NUL, and a lone surrogate (a legal JSON
# escape) is not UTF-8: both reached the database and answered 500.
UNSTORABLE = [
    ('"a\\u0000b"', "Null characters are not allowed."),
    ('"a\\ud800b"', "Surrogate characters are not allowed: U+D800."),
]


@pytest.mark.parametrize("field", ["notes", "external_id"])
@pytest.mark.parametrize(("raw", "message"), UNSTORABLE)
def test_text_the_database_cannot_store_is_400_naming_the_field(auth_client, field, raw, message):
    body = '{"metric_type": "steps", "value": 10, "%s": %s}' % (field, raw)  # noqa: UP031 - raw JSON escapes
    response = auth_client.post(METRICS, body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"] == {field: [message]}
    assert not HealthMetric.objects.exists()


# --- Real commits (no test transaction around the write) ---------------------------------


def _sample(metric_type: str, value: float, **fields) -> dict:
    return {
        "metric_type": metric_type, "value": value, "secondary_value": None,
        "unit": {"weight": "kg", "steps": "count"}[metric_type], "recorded_at": timezone.now(),
        "source": "manual", "external_id": None, "notes": "", **fields,
    }  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_create_commits_the_sample_and_the_goals_it_moves_and_bumps_once(django_assert_num_queries):
    from metrics import services

    user = UserFactory()
    goal = WeightLossGoalFactory(user=user, start_value=90.0, current_value=90.0, target_value=80.0)
    before = user_data_version(user.pk)

    # No goal follows steps: on PostgreSQL one statement inserts it and commits.
    with django_assert_num_queries(1 if connection.vendor == "postgresql" else 4):
        steps, created = services.metric_create(user_id=user.pk, fields=_sample("steps", 500))
    assert created and HealthMetric.objects.get().pk == steps.pk
    assert (steps.user_id, steps.value, steps.created_at is not None) == (user.pk, 500.0, True)
    assert user_data_version(user.pk) == before + 1

    # A weight goal follows weight: the sample and the goal change in one transaction.
    weight, created = services.metric_create(user_id=user.pk, fields=_sample("weight", 85.0))
    assert created and HealthMetric.objects.filter(pk=weight.pk, value=85.0).exists()
    goal.refresh_from_db()
    assert goal.current_value == 85.0
    assert user_data_version(user.pk) >= before + 2

    # A duplicate sync id stores nothing and leaves the connection usable.
    first, _ = services.metric_create(user_id=user.pk, fields=_sample("steps", 7, external_id="x"))
    again, created = services.metric_create(user_id=user.pk, fields=_sample("steps", 8, external_id="x"))
    assert (created, again.pk, again.value) == (False, first.pk, 7.0)
    assert HealthMetric.objects.count() == 3
