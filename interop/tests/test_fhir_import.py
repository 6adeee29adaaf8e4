"""POST /api/v1/health-metrics/import/fhir: a FHIR Bundle of Observations → metrics."""

from __future__ import annotations

import datetime
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from healthtrack.cache import user_data_version
from healthtrack.models import AuditEvent
from healthtrack.tests.live import needs_postgresql
from interop import services, views
from interop.tests.factories import SAMPLE_VALUES, ExportMetricFactory
from metrics.models import HealthMetric
from metrics.registry import METRIC_TYPES
from users.tests.factories import AdminFactory, CareTeamMembershipFactory, ClinicianFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/health-metrics/import/fhir"
WHEN = "2024-03-01T08:30:00+01:00"
UTC = datetime.UTC


def observation(code, value=None, unit=None, *, identifier=None, components=None, **extra) -> dict:
    resource = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "effectiveDateTime": WHEN,
    }
    if value is not None:
        resource["valueQuantity"] = {"value": value, "system": "http://unitsofmeasure.org", "code": unit}
    if components is not None:
        resource["component"] = components
    if identifier is not None:
        resource["identifier"] = [{"system": "https://ehr.example.org/obs", "value": identifier}]
    resource.update(extra)
    return resource


def component(code, value, unit="mm[Hg]") -> dict:
    return {
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "valueQuantity": {"value": value, "system": "http://unitsofmeasure.org", "code": unit},
    }


def bundle(*resources) -> dict:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


def post(client, document, **extra):
    return client.post(URL, json.dumps(document), content_type="application/json", **extra)


def heart_rates(count, *, start=0) -> dict:
    return bundle(
        *(observation("8867-4", 60 + n % 40, "/min", identifier=f"hr-{n}") for n in range(start, count))
    )


@pytest.fixture
def goal_calls(monkeypatch):
    calls = []
    monkeypatch.setattr(
        "metrics.services.goals_follow_metrics",
        lambda *, user_id, metric_types: calls.append((user_id, list(metric_types))),
    )
    return calls


# --- What is stored ---------------------------------------------------------------------


EVERY_TYPE = [
    # (observation, metric_type, value, secondary_value): units other than the canonical one
    (observation("8867-4", 64, "{beats}/min", identifier="a"), "heart_rate", 64, None),
    (observation("40443-4", 52, "/min", identifier="b"), "resting_heart_rate", 52, None),
    (observation("41950-7", 9000, "{steps}/d", identifier="c"), "steps", 9000, None),
    (observation("93832-4", 450, "min", identifier="d"), "sleep", 7.5, None),
    (observation("29463-7", 150, "[lb_av]", identifier="e"), "weight", 68.038855, None),
    (
        observation(
            "85354-9",
            identifier="f",
            components=[component("8480-6", 16, "kPa"), component("8462-4", 80)],
        ),
        "blood_pressure",
        120.009872,
        80,
    ),
    (observation("2339-0", 5.5, "mmol/L", identifier="g"), "blood_glucose", 99.088, None),
    (observation("59408-5", 0.97, "1", identifier="h"), "oxygen_saturation", 97, None),
    (observation("8310-5", 98.6, "[degF]", identifier="i"), "body_temperature", 37, None),
    (observation("55411-3", 0.5, "h", identifier="j"), "exercise", 30, None),
]


def test_every_type_is_stored_in_its_canonical_unit(auth_client, user, goal_calls):
    version = user_data_version(user.pk)
    response = post(auth_client, bundle(*(entry[0] for entry in EVERY_TYPE)))

    assert response.status_code == 201, response.content
    assert response.json() == {"created": len(EVERY_TYPE), "duplicates": 0, "errors": []}
    stored = {m.metric_type: m for m in HealthMetric.objects.filter(user=user)}
    assert set(stored) == set(METRIC_TYPES)
    for resource, metric_type, value, secondary in EVERY_TYPE:
        metric = stored[metric_type]
        assert metric.value == pytest.approx(value, abs=1e-6), metric_type
        assert metric.secondary_value == secondary
        assert metric.unit == METRIC_TYPES[metric_type].canonical_unit
        assert metric.recorded_at == datetime.datetime(2024, 3, 1, 7, 30, tzinfo=UTC)
        assert (metric.source, metric.external_id) == (
            "fhir",
            f"https://ehr.example.org/obs|{resource['identifier'][0]['value']}",
        )
    # Cache and goals follow once, for every type written.
    assert goal_calls == [(user.pk, sorted(METRIC_TYPES))]
    assert user_data_version(user.pk) != version
    event = AuditEvent.objects.get()
    assert (event.action, event.resource_type, event.subject_id, event.actor_id, event.status) == (
        "create",
        "metric",
        user.pk,
        user.pk,
        201,
    )
    assert sorted(map(int, event.object_ids)) == sorted(m.pk for m in stored.values())


def test_our_own_export_imports_into_another_account_unchanged(auth_client, make_client, user):
    originals = {t: ExportMetricFactory(user=user, metric_type=t, source="garmin") for t in METRIC_TYPES}
    document = json.loads(b"".join(auth_client.get(f"/api/v1/users/{user.pk}/export/fhir").streaming_content))
    receiver = UserFactory()

    response = post(make_client(receiver), document)

    assert response.json() == {
        "created": len(originals),
        "duplicates": 0,
        "errors": [],
    }  # Patient passed over
    imported = {m.metric_type: m for m in HealthMetric.objects.filter(user=receiver)}
    for metric_type, original in originals.items():
        copy = imported[metric_type]
        value, secondary, _ = SAMPLE_VALUES[metric_type]
        assert (copy.value, copy.secondary_value, copy.recorded_at) == (
            value,
            secondary,
            original.recorded_at,
        )
        assert copy.notes == "Device: Garmin"


def test_times_without_offset_are_the_persons_local_time(make_client):
    person = UserFactory(profile__timezone="America/New_York")
    document = bundle(
        observation("8867-4", 60, "/min", identifier="t", effectiveDateTime="2024-07-01T08:00:00"),
        observation("29463-7", 70, "kg", identifier="d", effectiveDateTime="2024-07-01"),  # local noon
    )
    assert post(make_client(person), document).status_code == 201
    times = dict(HealthMetric.objects.values_list("metric_type", "recorded_at"))
    assert times == {
        "heart_rate": datetime.datetime(2024, 7, 1, 12, 0, tzinfo=UTC),
        "weight": datetime.datetime(2024, 7, 1, 16, 0, tzinfo=UTC),
    }


def test_application_fhir_json_is_accepted_and_answered_in_json(auth_client):
    response = auth_client.post(
        URL,
        json.dumps(heart_rates(2)),
        content_type="application/fhir+json",
        HTTP_ACCEPT="application/fhir+json",
    )
    assert response.status_code == 201
    assert response["Content-Type"] == "application/json"
    assert response.json()["created"] == 2


# --- Errors per entry ---------------------------------------------------------------------


def test_errors_name_the_bundle_entry_and_the_rest_is_stored(auth_client, user):
    future = (datetime.datetime.now(UTC) + datetime.timedelta(days=1)).isoformat()
    document = bundle(
        observation("8867-4", 61, "/min", identifier="ok-0"),  # 0
        observation("1234-5", 1, "1", identifier="unknown"),  # 1 a code we do not map
        {"resourceType": "Patient", "id": "p"},  # 2 passed over
        observation("29463-7", 70, "kg", identifier="ok-3"),  # 3
        observation("29463-7", identifier="no-value"),  # 4
        observation(
            "8867-4", 61, "/min", identifier="future", effectiveDateTime=future
        ),  # 5 refused on ingest
        observation("85354-9", identifier="bp", components=[component("8480-6", 120)]),  # 6 no diastolic
        observation("41950-7", 8000, identifier="ok-7"),  # 7 steps need no unit
        observation(
            "8867-4", 61, "/min", identifier="long", note=[{"text": "x" * 2001}]
        ),  # 8 refused on ingest
    )
    response = post(auth_client, document)

    assert response.status_code == 201
    body = response.json()
    assert (body["created"], body["duplicates"]) == (3, 0)
    assert [(e["index"], e["field"]) for e in body["errors"]] == [
        (1, "resource.code"),
        (4, "resource.valueQuantity"),
        (5, "resource.effective[x]"),
        (6, "resource.component"),
        (8, "resource.note"),
    ]
    assert body["errors"][2]["message"].startswith("Must not be more than 5 minutes in the future")
    stored = set(HealthMetric.objects.filter(user=user).values_list("external_id", flat=True))
    assert stored == {f"https://ehr.example.org/obs|ok-{n}" for n in (0, 3, 7)}


def test_nothing_valid_is_200_and_nothing_stored(auth_client):
    response = post(auth_client, bundle(observation("1234-5", 1, "1")))
    assert response.status_code == 200
    assert response.json()["created"] == 0 and len(response.json()["errors"]) == 1
    assert not HealthMetric.objects.exists()
    assert AuditEvent.objects.get().object_ids == []


def test_reposting_the_same_bundle_stores_nothing_new(auth_client, user, goal_calls):
    document = bundle(*(entry[0] for entry in EVERY_TYPE), observation("8867-4", 70, "/min", identifier="a"))
    first = post(auth_client, document).json()
    assert (first["created"], first["duplicates"]) == (len(EVERY_TYPE), 1)  # repeated within the Bundle
    stored = list(HealthMetric.objects.order_by("id").values_list("id", "value"))

    again = post(auth_client, document)

    assert again.status_code == 200
    assert again.json() == {"created": 0, "duplicates": len(EVERY_TYPE) + 1, "errors": []}
    assert list(HealthMetric.objects.order_by("id").values_list("id", "value")) == stored
    assert len(goal_calls) == 1  # nothing changed the second time: no follow-up


# --- Size, shape -------------------------------------------------------------------------


def test_more_entries_than_the_limit_is_413_naming_it(auth_client, monkeypatch):
    monkeypatch.setattr(services, "FHIR_IMPORT_MAX_ENTRIES", 3)
    response = post(auth_client, heart_rates(4))
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert response.json()["detail"] == "At most 3 entries per Bundle; got 4. Split the Bundle."
    assert not HealthMetric.objects.exists()
    assert post(auth_client, heart_rates(3)).status_code == 201


def test_a_body_over_the_byte_limit_is_413_naming_it(auth_client, monkeypatch):
    monkeypatch.setattr(views.FhirImportView, "max_body_bytes", 2000)
    response = post(auth_client, heart_rates(20))
    assert response.status_code == 413
    assert "limit of 2000 bytes" in response.json()["detail"]
    assert not HealthMetric.objects.exists()


def test_documented_limits():
    assert views.FhirImportView.max_body_bytes == services.FHIR_IMPORT_MAX_BODY_BYTES == 10 * 1024 * 1024
    assert services.FHIR_IMPORT_MAX_ENTRIES == 10_000


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"resourceType": "Observation", "status": "final"}, "resourceType"),
        ([{"resourceType": "Bundle"}], "resourceType"),
        ({"entry": []}, "resourceType"),
        ({"resourceType": "Bundle", "entry": {"resource": {}}}, "entry"),
        ("Bundle", "resourceType"),
    ],
)
def test_not_a_bundle_is_400_naming_the_field(auth_client, document, field):
    response = post(auth_client, document)
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]
    assert not HealthMetric.objects.exists()
    assert AuditEvent.objects.get().status == 400  # a refused import is on the trail


def test_an_empty_bundle_is_fine(auth_client):
    response = post(auth_client, {"resourceType": "Bundle", "type": "collection"})
    assert (response.status_code, response.json()) == (200, {"created": 0, "duplicates": 0, "errors": []})


def test_malformed_json_is_400_and_other_media_types_415(auth_client):
    assert auth_client.post(URL, "{not json", content_type="application/json").status_code == 400
    response = auth_client.post(URL, "resourceType=Bundle", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415


# --- Who ------------------------------------------------------------------------------------


def test_importing_for_another_user_is_404_nothing_stored_and_audited(auth_client, other_user):
    response = post(auth_client, heart_rates(2), QUERY_STRING=f"user_id={other_user.pk}")
    assert response.status_code == 404
    assert not HealthMetric.objects.exists()
    event = AuditEvent.objects.get()
    assert (event.action, event.subject_id) == ("denied", other_user.pk)


def test_a_clinician_cannot_import_for_a_patient(make_client, user):
    clinician = ClinicianFactory()
    CareTeamMembershipFactory(patient=user, clinician=clinician)
    response = post(make_client(clinician), heart_rates(2), QUERY_STRING=f"user_id={user.pk}")
    assert response.status_code == 404
    assert not HealthMetric.objects.exists()
    assert AuditEvent.objects.get().action == "denied"


def test_a_superuser_imports_for_anyone_active_but_not_for_no_one(make_client, user):
    admin = make_client(AdminFactory())
    response = post(admin, heart_rates(2), QUERY_STRING=f"user_id={user.pk}")
    assert response.status_code == 201
    assert set(HealthMetric.objects.values_list("user_id", flat=True)) == {user.pk}
    assert post(admin, heart_rates(1), QUERY_STRING="user_id=999999").status_code == 404
    inactive = UserFactory(is_active=False)
    assert post(admin, heart_rates(1), QUERY_STRING=f"user_id={inactive.pk}").status_code == 404
    assert not HealthMetric.objects.filter(user=inactive).exists()


def test_anonymous_is_401(api_client):
    assert post(api_client, heart_rates(1)).status_code == 401


# --- Cost -----------------------------------------------------------------------------------


def _queries(client, document) -> int:
    with CaptureQueriesContext(connection) as context:
        response = post(client, document)
    assert response.status_code == 201, response.content
    return len(context.captured_queries)


def test_queries_grow_with_batches_of_a_thousand_not_with_entries(auth_client, user, goal_calls):
    auth_client.get("/api/v1/users/me")  # the auth snapshot
    one_batch = _queries(auth_client, heart_rates(1000))
    three_batches = _queries(auth_client, heart_rates(4000, start=1000))
    assert HealthMetric.objects.count() == 4000
    # Per batch: stored sync ids + INSERT (SQLite: a few) + savepoint pair.
    fields = [f for f in HealthMetric._meta.concrete_fields if f.name != "id"]
    per_insert = (
        1
        if connection.vendor == "postgresql"
        else -(-1000 // connection.ops.bulk_batch_size(fields, [None] * 1000))
    )
    assert three_batches - one_batch == 2 * (1 + per_insert + 2)
    # + the import's savepoint pair, the audit row (and PostgreSQL's per-person import lock).
    lock = 1 if connection.vendor == "postgresql" else 0
    assert one_batch == 1 + per_insert + 2 + 2 + 1 + lock


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_two_imports_of_the_same_data_at_once_neither_fails_nor_duplicates(monkeypatch):
    """The same 1,500 observations imported twice at the same moment, in opposite orders,
    each import pausing after its first batch so the other can write meanwhile: without
    the per-person import lock each would hold rows the other needs (a deadlock, one of
    them fails). With it, one stores everything and the other finds it all stored."""
    person = UserFactory()
    forward = heart_rates(1500)
    documents = {"forward": forward, "backward": {**forward, "entry": list(reversed(forward["entry"]))}}
    first_batch_written = {name: threading.Event() for name in documents}
    current = threading.local()
    real = services.metric_bulk_ingest

    def ingest_then_pause(**kwargs):
        result = real(**kwargs)
        first_batch_written[current.name].set()
        other = "backward" if current.name == "forward" else "forward"
        first_batch_written[other].wait(timeout=1)
        return result

    monkeypatch.setattr(services, "metric_bulk_ingest", ingest_then_pause)

    def run(name):
        current.name = name
        try:
            return services.fhir_import(user_id=person.pk, bundle=documents[name], tz=UTC)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(run, documents))

    assert sorted((len(r.created_ids), r.duplicates) for r in results) == [(0, 1500), (1500, 0)]
    assert HealthMetric.objects.filter(user=person).count() == 1500
