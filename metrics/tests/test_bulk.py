import datetime

import orjson
import pytest
from django.db import connection
from django.utils import timezone

from healthtrack.audit import MAX_OBJECT_IDS
from healthtrack.cache import user_data_version
from healthtrack.models import AuditEvent
from metrics import selectors, services
from metrics.models import HealthMetric
from metrics.tests.factories import HealthMetricFactory
from metrics.tests.helpers import BULK, METRICS
from metrics.validation import BULK_MAX_SAMPLES
from metrics.views import BULK_MAX_BODY_BYTES

pytestmark = pytest.mark.django_db


def steps(external_id=None, value=1000, source="apple_health", **extra):
    sample = {"metric_type": "steps", "value": value, "source": source, **extra}
    if external_id is not None:
        sample["external_id"] = external_id
    return sample


def test_mix_of_valid_invalid_and_duplicate_samples(auth_client, user, goal_calls):
    HealthMetricFactory(user=user, source="apple_health", external_id="stored", value=1)
    samples = [
        steps("a", 1000),  # 0 new
        {"metric_type": "weight", "value": 150, "unit": "lb", "external_id": "b"},  # 1 new, converted
        steps("stored", 5),  # 2 duplicate of a stored sample
        steps("a", 2000),  # 3 duplicate of sample 0, within the batch
        {"metric_type": "heart_rate", "value": 400},  # 4 out of range
        {"metric_type": "blood_pressure", "value": 120},  # 5 missing diastolic
        "not an object",  # 6
        {"metric_type": "sleep", "value": 480, "unit": "min", "notes": "long night"},  # 7 new, no external id
        {"metric_type": "steps", "value": 1, "color": "red", "unit": "furlongs"},  # 8 two problems
        steps("a", 1000, source="garmin"),  # 9 new: same id, other source
    ]
    response = auth_client.post(BULK, {"samples": samples}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert (body["created"], body["duplicates"]) == (4, 2)
    assert body["errors"] == [
        {"index": 4, "field": "value", "message": "heart_rate must be between 20 and 250 bpm."},
        {
            "index": 5,
            "field": "secondary_value",
            "message": "Required for blood_pressure: the diastolic pressure, between 30 and 180 mmHg.",
        },
        {
            "index": 6,
            "field": "non_field_errors",
            "message": "Expected a JSON object with the fields of a sample.",
        },
        {"index": 8, "field": "color", "message": "Unknown field; it cannot be set."},
        {
            "index": 8,
            "field": "unit",
            "message": "'furlongs' is not a unit of steps; accepted (case-insensitive): count, steps.",
        },
    ]
    stored = {
        (m.source, m.external_id, m.metric_type): (m.value, m.unit, m.notes)
        for m in HealthMetric.objects.filter(user=user)
    }
    assert stored == {
        ("apple_health", "stored", "steps"): (1, "count", ""),
        ("apple_health", "a", "steps"): (1000, "count", ""),
        ("manual", "b", "weight"): (pytest.approx(68.038855), "kg", ""),
        ("manual", None, "sleep"): (8.0, "h", "long night"),
        ("garmin", "a", "steps"): (1000, "count", ""),
    }
    assert goal_calls == [(user.pk, ["sleep", "steps", "weight"])]
    event = AuditEvent.objects.get()
    assert (event.action, event.subject_id, event.status) == ("create", user.pk, 201)
    new_ids = set(HealthMetric.objects.exclude(external_id="stored").values_list("id", flat=True))
    assert {int(i) for i in event.object_ids} == new_ids


def test_bulk_and_single_post_give_the_same_errors(auth_client):
    bad = [
        {"metric_type": "weight", "value": 2000, "unit": "lbs"},
        {"metric_type": "blood_pressure", "value": 100, "secondary_value": 110},
        {
            "metric_type": "steps",
            "value": 1,
            "recorded_at": (timezone.now() + datetime.timedelta(hours=1)).isoformat(),
        },
        {"metric_type": "glucose", "value": 5},
    ]
    bulk_errors = auth_client.post(BULK, {"samples": bad}, format="json").json()["errors"]
    for index, sample in enumerate(bad):
        single = auth_client.post(METRICS, sample, format="json").json()["errors"]
        from_bulk = {}
        for error in bulk_errors:
            if error["index"] == index:
                from_bulk.setdefault(error["field"], []).append(error["message"])
        if "recorded_at" in single:  # the message quotes the server time of each request
            assert set(from_bulk) == set(single) == {"recorded_at"}
        else:
            assert from_bulk == single


def test_reposting_the_same_batch_stores_nothing_new(auth_client, user):
    batch = {"samples": [steps(f"s{i}", 100 + i) for i in range(5)]}
    assert auth_client.post(BULK, batch, format="json").json() == {
        "created": 5,
        "duplicates": 0,
        "errors": [],
    }
    version = user_data_version(user.pk)
    again = auth_client.post(BULK, batch, format="json")
    assert again.status_code == 200
    assert again.json() == {"created": 0, "duplicates": 5, "errors": []}
    assert HealthMetric.objects.count() == 5
    assert user_data_version(user.pk) == version


def test_all_invalid_is_200_with_errors_and_nothing_stored(auth_client, goal_calls):
    response = auth_client.post(BULK, {"samples": [{"metric_type": "steps", "value": -1}]}, format="json")
    assert response.status_code == 200
    assert response.json()["created"] == 0 and len(response.json()["errors"]) == 1
    assert not HealthMetric.objects.exists() and goal_calls == []


def test_empty_batch_is_fine(auth_client):
    response = auth_client.post(BULK, {"samples": []}, format="json")
    assert (response.status_code, response.json()) == (200, {"created": 0, "duplicates": 0, "errors": []})


def test_a_full_batch_is_stored(auth_client, user):
    now = timezone.now()
    samples = [
        steps(f"x{i}", i, recorded_at=(now - datetime.timedelta(minutes=i)).isoformat())
        for i in range(BULK_MAX_SAMPLES)
    ]
    response = auth_client.post(BULK, {"samples": samples}, format="json")
    assert response.json() == {"created": BULK_MAX_SAMPLES, "duplicates": 0, "errors": []}
    assert HealthMetric.objects.filter(user=user).count() == BULK_MAX_SAMPLES
    assert len(AuditEvent.objects.get().object_ids) == min(BULK_MAX_SAMPLES, MAX_OBJECT_IDS)


def test_over_the_sample_limit_is_413_and_nothing_stored(auth_client):
    samples = [steps(f"x{i}") for i in range(BULK_MAX_SAMPLES + 1)]
    response = auth_client.post(BULK, {"samples": samples}, format="json")
    assert response.status_code == 413
    body = response.json()
    assert body["code"] == "payload_too_large"
    assert "At most 1000 samples per request; got 1001" in body["detail"]
    assert not HealthMetric.objects.exists()


def test_body_over_the_byte_limit_is_413(auth_client):
    payload = orjson.dumps({"samples": [steps(notes="n" * 1900) for _ in range(1000)]})
    payload += b" " * (BULK_MAX_BODY_BYTES - len(payload) + 1)
    response = auth_client.post(BULK, payload, content_type="application/json")
    assert response.status_code == 413
    assert f"limit of {BULK_MAX_BODY_BYTES} bytes" in response.json()["detail"]
    assert not HealthMetric.objects.exists()


def test_a_body_over_the_default_limit_is_fine_for_bulk(auth_client):
    payload = orjson.dumps({"samples": [steps(notes="n" * 1500) for _ in range(1000)]})
    assert len(payload) > 1_048_576
    response = auth_client.post(BULK, payload, content_type="application/json")
    assert response.json()["created"] == 1000


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "samples"),
        ({"samples": {"metric_type": "steps"}}, "samples"),
        ([{"metric_type": "steps", "value": 1}], "samples"),
        ({"samples": [], "mode": "fast"}, "mode"),
    ],
)
def test_malformed_body_is_400(auth_client, body, field):
    response = auth_client.post(BULK, body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_bulk_for_another_user_is_404_and_nothing_stored(auth_client, other_user):
    response = auth_client.post(f"{BULK}?user_id={other_user.pk}", {"samples": [steps("a")]}, format="json")
    assert response.status_code == 404
    assert not HealthMetric.objects.exists()
    assert AuditEvent.objects.get().action == "denied"


def test_clinician_cannot_bulk_write_for_patient(clinician_client, user):
    response = clinician_client.post(f"{BULK}?user_id={user.pk}", {"samples": [steps("a")]}, format="json")
    assert response.status_code == 404
    assert not HealthMetric.objects.exists()


def test_superuser_bulk_writes_for_a_user(admin_client, user):
    response = admin_client.post(f"{BULK}?user_id={user.pk}", {"samples": [steps("a")]}, format="json")
    assert response.status_code == 201
    assert HealthMetric.objects.get().user_id == user.pk


def test_concurrent_writer_neither_loses_nor_duplicates(auth_client, user, monkeypatch):
    """Another request stores one of our ids after our look-up: the insert fails as a
    whole, is rolled back and retried without it."""
    real = selectors.metric_stored_sync_keys
    calls = []

    def lookup_then_race(**kwargs):
        calls.append(1)
        found = real(**kwargs)
        if len(calls) == 1:
            HealthMetricFactory(user=user, source="apple_health", external_id="b", value=7)
        return found

    monkeypatch.setattr(selectors, "metric_stored_sync_keys", lookup_then_race)
    samples = [steps("a", 1), steps("b", 2), steps("c", 3), {"metric_type": "steps", "value": 4}]
    response = auth_client.post(BULK, {"samples": samples}, format="json")

    assert response.status_code == 201
    assert response.json() == {"created": 3, "duplicates": 1, "errors": []}
    assert len(calls) == 2
    stored = sorted(HealthMetric.objects.values_list("external_id", "value"), key=str)
    assert stored == sorted([("a", 1), ("b", 7), ("c", 3), (None, 4)], key=str)
    assert len(AuditEvent.objects.get().object_ids) == 3


def test_persistent_integrity_error_is_raised_not_looped(user, monkeypatch):
    from django.db import IntegrityError

    def always_conflict(**kwargs):
        raise IntegrityError("conflict")

    monkeypatch.setattr(services, "_insert_rows", always_conflict)
    with pytest.raises(IntegrityError):
        services.metric_bulk_ingest(user_id=user.pk, samples=[steps("a")])
    assert not HealthMetric.objects.exists()


def test_bulk_query_count(auth_client, user, goal_calls, django_assert_num_queries):
    HealthMetricFactory(user=user, source="apple_health", external_id="s0")
    auth_client.get("/api/v1/users/me")
    samples = [steps(f"s{i}", i) for i in range(200)] + [{"metric_type": "heart_rate", "value": 60}]
    # stored ids look-up + one INSERT + audit row, plus the savepoint pair of the
    # transaction. (SQLite's bulk_create splits an INSERT to stay under its parameter limit.)
    fields = [f for f in HealthMetric._meta.concrete_fields if f.name != "id"]
    per_statement = connection.ops.bulk_batch_size(fields, [None] * 200)
    inserts = 1 if connection.vendor == "postgresql" else -(-200 // per_statement)
    with django_assert_num_queries(1 + inserts + 1 + 2):
        response = auth_client.post(BULK, {"samples": samples}, format="json")
    assert response.json() == {"created": 200, "duplicates": 1, "errors": []}


def test_bulk_insert_writes_every_column():
    """The PostgreSQL fast path names its columns: a new model field must be added to it."""
    columns = {field.attname for field in HealthMetric._meta.concrete_fields}
    assert columns == {"id", "user_id", "created_at", *services.INSERT_COLUMNS}


def test_created_rows_carry_created_at(auth_client, user):
    before = timezone.now()
    auth_client.post(BULK, {"samples": [steps("a"), steps("b")]}, format="json")
    for metric in HealthMetric.objects.all():
        assert metric.created_at >= before and metric.user_id == user.pk


def test_samples_with_text_the_database_cannot_store_are_reported_and_the_rest_stored(auth_client, user):
    body = (
        '{"samples": [{"metric_type": "steps", "value": 10, "notes": "a\\u0000b"},'
        ' {"metric_type": "steps", "value": 11, "external_id": "x\\udfffy"},'
        ' {"metric_type": "steps", "value": 12, "notes": "fine"}]}'
    )
    response = auth_client.post(BULK, body, content_type="application/json")
    assert response.status_code == 201, response.content
    assert response.json()["errors"] == [
        {"index": 0, "field": "notes", "message": "Null characters are not allowed."},
        {"index": 1, "field": "external_id", "message": "Surrogate characters are not allowed: U+DFFF."},
    ]
    assert list(HealthMetric.objects.filter(user=user).values_list("value", flat=True)) == [12]
