"""POST /api/v1/health-metrics/import/apple-health and the import service behind it."""

from __future__ import annotations

import datetime
import io
import tracemalloc

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from healthtrack.cache import user_data_version
from healthtrack.models import AuditEvent
from interop import services, views
from interop.apple_health import AppleHealthFormatError
from interop.tests.apple_exports import FIXTURE, PST, GeneratedExport, export, record, zipped
from metrics.models import HealthMetric
from nutrition.models import NutritionLog
from users.tests.factories import AdminFactory, CareTeamMembershipFactory, ClinicianFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/health-metrics/import/apple-health"
FIXTURE_BYTES = FIXTURE.read_bytes()
# What the test export holds (interop/tests/fixtures/export.xml, see test_apple_health.py).
FIXTURE_METRICS = {
    "blood_glucose": 2,
    "blood_pressure": 1,
    "body_temperature": 2,
    "exercise": 1,
    "heart_rate": 2,
    "oxygen_saturation": 1,
    "resting_heart_rate": 1,
    "sleep": 2,
    "steps": 3,
    "weight": 2,
}


def upload(client, content: bytes = FIXTURE_BYTES, name: str = "export.xml", **extra):
    return client.post(URL, {"file": SimpleUploadedFile(name, content)}, format="multipart", **extra)


def later_export() -> bytes:
    """The test export as the Health app would export it a few days later: one more walk
    on 2 March, one more glass of water that day, a new heart rate and a new day of steps."""
    more = b"".join(
        [
            record("HKQuantityTypeIdentifierStepCount", 700, "count", start="2024-03-02 10:00:00 -0800",
                   source="Ada\u2019s iPhone"),
            record("HKQuantityTypeIdentifierDietaryWater", 200, "mL", start="2024-03-02 15:00:00 -0800",
                   source="WaterMinder"),
            record("HKQuantityTypeIdentifierHeartRate", 66, "count/min", start="2024-03-07 08:00:00 -0800"),
            record("HKQuantityTypeIdentifierStepCount", 2500, "count", start="2024-03-07 09:00:00 -0800"),
        ]
    )  # fmt: skip
    return FIXTURE_BYTES.replace(b"</HealthData>", more + b"</HealthData>")


@pytest.fixture
def goal_calls(monkeypatch):
    calls = []
    monkeypatch.setattr(
        "metrics.services.goals_follow_metrics",
        lambda *, user_id, metric_types: calls.append((user_id, list(metric_types))),
    )
    return calls


# --- The route ---------------------------------------------------------------------------


def test_the_test_export_is_imported(auth_client, user, goal_calls):
    version = user_data_version(user.pk)
    response = upload(auth_client)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["metrics"] == {"created": 17, "updated": 0, "duplicates": 0, "error_count": 0, "errors": []}
    assert body["nutrition"] == {"created": 3, "updated": 0, "duplicates": 0, "error_count": 0, "errors": []}
    assert body["per_type"] == {"metrics": FIXTURE_METRICS, "nutrition": {"food": 1, "water": 2}}
    assert (body["dry_run"], body["records_read"], body["export_date"]) == (
        False,
        44,
        "2024-03-06T09:00:00-08:00",
    )
    skipped = {(s["type"], s["reason"]): s["count"] for s in body["skipped"]}
    assert skipped[("HKQuantityTypeIdentifierActiveEnergyBurned", "type not imported")] == 1
    assert sum(skipped.values()) == 9

    metrics = HealthMetric.objects.filter(user=user)
    counts: dict[str, int] = {}
    for metric in metrics:
        counts[metric.metric_type] = counts.get(metric.metric_type, 0) + 1
        assert metric.source == "apple_health" and metric.external_id.startswith("hk:")
    assert counts == FIXTURE_METRICS
    steps = dict(metrics.filter(metric_type="steps").values_list("external_id", "value"))
    assert steps == {"hk:steps:2024-03-01": 4700, "hk:steps:2024-03-02": 800, "hk:steps:2024-03-05": 1000}
    bp = metrics.get(metric_type="blood_pressure")
    assert (bp.value, bp.secondary_value, bp.recorded_at) == (
        118,
        76,
        datetime.datetime(2024, 3, 1, 8, 30, tzinfo=PST),
    )
    logs = {log.external_id: log for log in NutritionLog.objects.filter(user=user)}
    assert logs["hk:water:2024-03-01"].water_ml == pytest.approx(250 + 500 + 236.6, abs=0.1)
    assert (logs["hk:food:2024-03-01"].meal_type, logs["hk:food:2024-03-01"].calories) == ("snack", 950)

    # One follow-up for everything, one audit row naming every row written.
    assert goal_calls == [(user.pk, sorted(FIXTURE_METRICS))]
    assert user_data_version(user.pk) != version
    event = AuditEvent.objects.get()
    assert (event.action, event.resource_type, event.subject_id, event.status) == (
        "create",
        "apple_health_import",
        user.pk,
        201,
    )
    assert sorted(event.object_ids) == sorted(
        [f"metric:{m.pk}" for m in metrics] + [f"nutrition:{pk}" for pk in (log.pk for log in logs.values())]
    )


def test_the_zip_the_health_app_makes_gives_the_same_result(auth_client, make_client, user):
    from_xml = upload(auth_client).json()
    other = UserFactory()
    from_zip = upload(make_client(other), zipped(FIXTURE_BYTES), name="export.zip")
    assert from_zip.status_code == 201
    assert from_zip.json() == from_xml
    assert HealthMetric.objects.filter(user=other).count() == 17


def test_importing_the_same_export_again_stores_nothing_new(auth_client, user, goal_calls):
    upload(auth_client)
    stored = sorted(HealthMetric.objects.values_list("id", "external_id", "value"))

    response = upload(auth_client, zipped(FIXTURE_BYTES), name="export.zip")

    assert response.status_code == 200
    body = response.json()
    assert body["metrics"] == {"created": 0, "updated": 0, "duplicates": 17, "error_count": 0, "errors": []}
    assert body["nutrition"] == {"created": 0, "updated": 0, "duplicates": 3, "error_count": 0, "errors": []}
    assert sorted(HealthMetric.objects.values_list("id", "external_id", "value")) == stored
    assert NutritionLog.objects.count() == 3
    assert len(goal_calls) == 1  # nothing changed: no follow-up, and no version bump
    assert AuditEvent.objects.order_by("-id")[0].object_ids == []


def test_a_later_export_updates_the_daily_totals_it_recounts(auth_client, user, goal_calls):
    upload(auth_client)
    ids = dict(HealthMetric.objects.values_list("external_id", "id"))
    water_id = NutritionLog.objects.get(external_id="hk:water:2024-03-02").pk

    response = upload(auth_client, later_export())

    assert response.status_code == 201
    body = response.json()
    assert (body["metrics"]["created"], body["metrics"]["updated"], body["metrics"]["duplicates"]) == (
        2,
        1,
        16,
    )
    assert (body["nutrition"]["created"], body["nutrition"]["updated"], body["nutrition"]["duplicates"]) == (
        0,
        1,
        2,
    )
    day = HealthMetric.objects.get(external_id="hk:steps:2024-03-02")
    assert (day.pk, day.value) == (ids["hk:steps:2024-03-02"], 1500)  # the same row, recounted
    assert HealthMetric.objects.get(external_id="hk:steps:2024-03-01").value == 4700
    assert HealthMetric.objects.get(external_id="hk:steps:2024-03-07").value == 2500
    water = NutritionLog.objects.get(external_id="hk:water:2024-03-02")
    assert (water.pk, water.water_ml) == (water_id, 500)
    assert goal_calls[-1] == (user.pk, ["heart_rate", "steps"])
    event = AuditEvent.objects.order_by("-id")[0]
    assert f"metric:{ids['hk:steps:2024-03-02']}" in event.object_ids
    assert f"nutrition:{water_id}" in event.object_ids


def test_an_export_broken_part_way_stores_nothing(auth_client, user, goal_calls, tmp_path):
    """All or nothing: two batches of heart rates were written before the parser met the
    malformed XML; the 400 leaves none of them."""
    version = user_data_version(user.pk)
    broken = GeneratedExport(2_500, broken_after=2_400).write_to(tmp_path / "export.xml").read_bytes()

    response = upload(auth_client, broken)

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == ["file"]
    assert errors["file"][0].startswith("export.xml is not well-formed XML at line")
    assert not HealthMetric.objects.exists() and not NutritionLog.objects.exists()
    assert goal_calls == [] and user_data_version(user.pk) == version
    assert AuditEvent.objects.get().status == 400


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "export.xml is not well-formed XML"),
        (b"%PDF-1.7 not an export", "export.xml is not well-formed XML"),
        (b"<html><body>hello</body></html>", "Not an Apple Health export"),
        (zipped(b"<HealthData/>", member="other.xml"), "The zip has no apple_health_export/export.xml"),
        (b"PK\x03\x04 damaged", "Not a readable zip file"),
    ],
)
def test_a_file_that_is_not_an_export_is_400_naming_file(auth_client, content, message):
    response = upload(auth_client, content)
    assert response.status_code == 400
    assert response.json()["errors"]["file"][0].startswith(message)


def test_an_upload_over_the_size_limit_is_413_naming_it(auth_client, monkeypatch):
    monkeypatch.setattr(views.AppleHealthImportView, "max_body_bytes", 10_000)
    response = upload(auth_client)  # the test export is 14.7 kB
    assert response.status_code == 413
    assert "limit of 10000 bytes" in response.json()["detail"]
    assert not HealthMetric.objects.exists()


def test_a_zip_that_unpacks_beyond_the_xml_limit_is_413(auth_client, monkeypatch):
    monkeypatch.setattr(services, "APPLE_HEALTH_MAX_XML_BYTES", 5000)
    response = upload(auth_client, zipped(FIXTURE_BYTES), name="export.zip")
    assert response.status_code == 413
    assert response.json()["detail"] == "The unpacked export.xml is over the limit of 5000 bytes."
    assert not HealthMetric.objects.exists()


def test_documented_limits():
    assert views.AppleHealthImportView.max_body_bytes == services.APPLE_HEALTH_MAX_UPLOAD_BYTES == 200 * 2**20
    assert services.APPLE_HEALTH_MAX_XML_BYTES == 4 * 2**30


def test_the_upload_streams_to_a_temporary_file_even_when_small(auth_client, monkeypatch):
    seen = []
    real = services.apple_health_import

    def spy(**kwargs):
        seen.append(kwargs["source"])
        return real(**kwargs)

    monkeypatch.setattr(services, "apple_health_import", spy)
    assert upload(auth_client).status_code == 201
    (source,) = seen
    assert isinstance(source, TemporaryUploadedFile)
    assert source.closed  # and it is closed (deleted) once imported


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "file"),
        ({"file": "not a file"}, "file"),
        ({"file": SimpleUploadedFile("export.xml", FIXTURE_BYTES), "note": "hi"}, "note"),
        (
            {
                "file": [
                    SimpleUploadedFile("a.xml", FIXTURE_BYTES),
                    SimpleUploadedFile("b.xml", FIXTURE_BYTES),
                ]
            },
            "file",
        ),
    ],
)
def test_the_form_must_hold_one_file_named_file(auth_client, data, field):
    response = auth_client.post(URL, data, format="multipart")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]
    assert not HealthMetric.objects.exists()


def test_a_json_body_is_415(auth_client):
    assert auth_client.post(URL, {"file": "x"}, format="json").status_code == 415


def test_a_chunked_upload_is_imported(auth_client, user):
    """A body without Content-Length (Transfer-Encoding: chunked, de-chunked by gunicorn)
    is buffered by the middleware, to a temporary file once it is large, and imported."""
    from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

    body = encode_multipart(BOUNDARY, {"file": SimpleUploadedFile("export.xml", FIXTURE_BYTES)})
    response = auth_client.generic(
        "POST",
        URL,
        body,
        content_type=MULTIPART_CONTENT,
        CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True},
    )
    assert response.status_code == 201, response.content
    assert HealthMetric.objects.filter(user=user).count() == 17


# --- Who ----------------------------------------------------------------------------------------


def test_importing_for_another_user_is_404_and_nothing_stored(auth_client, other_user):
    response = upload(auth_client, QUERY_STRING=f"user_id={other_user.pk}")
    assert response.status_code == 404
    assert not HealthMetric.objects.exists()
    event = AuditEvent.objects.get()
    assert (event.action, event.resource_type, event.subject_id) == (
        "denied",
        "apple_health_import",
        other_user.pk,
    )


def test_a_clinician_cannot_import_for_a_patient(make_client, user):
    clinician = ClinicianFactory()
    CareTeamMembershipFactory(patient=user, clinician=clinician)
    response = upload(make_client(clinician), QUERY_STRING=f"user_id={user.pk}")
    assert response.status_code == 404
    assert not HealthMetric.objects.exists()


def test_a_superuser_imports_for_a_user(make_client, user):
    response = upload(make_client(AdminFactory()), QUERY_STRING=f"user_id={user.pk}")
    assert response.status_code == 201
    assert set(HealthMetric.objects.values_list("user_id", flat=True)) == {user.pk}


# --- The service: batches, memory, dry run --------------------------------------------------


def test_records_are_written_in_batches_one_follow_up_at_the_end(user, goal_calls, monkeypatch):
    calls = []
    real = services.metric_bulk_ingest

    def spy(**kwargs):
        calls.append((len(kwargs["samples"]), kwargs["notify"]))
        return real(**kwargs)

    monkeypatch.setattr(services, "metric_bulk_ingest", spy)
    result = services.apple_health_import(user_id=user.pk, source=GeneratedExport(2_500))
    # 2,500 heart rates in batches of 1,000, then the two days of step totals.
    assert calls == [(1000, False), (1000, False), (502, False)]
    assert result.metrics.created == 2_502
    assert goal_calls == [(user.pk, ["heart_rate", "steps"])]


def _import_queries(user, records: int) -> int:
    with CaptureQueriesContext(connection) as context:
        result = services.apple_health_import(user_id=user.pk, source=GeneratedExport(records))
    assert result.metrics.error_count == 0
    return len(context.captured_queries)


def test_queries_grow_with_batches_not_records(goal_calls):
    # 1,000 heart rates + 1 day of steps: 2 batches; 3,000 + 3 days: 4 batches.
    small = _import_queries(UserFactory(), 1_000)
    large = _import_queries(UserFactory(), 3_000)
    fields = [f for f in HealthMetric._meta.concrete_fields if f.name != "id"]
    per_insert = (
        1
        if connection.vendor == "postgresql"
        else -(-1000 // connection.ops.bulk_batch_size(fields, [None] * 1000))
    )
    # Per batch: stored sync ids, INSERT, savepoint pair.
    assert large - small == 2 * (1 + per_insert + 2)
    # A full batch and the one-row batch of step totals, + the import's savepoint pair (and
    # PostgreSQL's per-person import lock).
    assert small == (1 + per_insert + 2) + (1 + 1 + 2) + 2 + (1 if connection.vendor == "postgresql" else 0)


def test_memory_stays_flat_however_large_the_export(goal_calls):
    """The phase-1 parser test, now through the database: a 4x larger export does not
    need more memory (records are written and dropped batch by batch)."""

    def peak(records: int) -> tuple[int, int]:
        source = GeneratedExport(records)
        user = UserFactory()
        tracemalloc.start()
        try:
            result = services.apple_health_import(user_id=user.pk, source=source)
            _, top = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert result.metrics.created > records
        return top, source.size

    small, _ = peak(1_500)
    large, size = peak(6_000)
    assert size > 1_300_000
    # About 2 MB: a batch of 1,000 samples in flight, whatever the size of the export.
    assert large < small * 1.3, (small, large)
    assert large < 5_000_000, large


def test_dry_run_reports_and_stores_nothing(user, goal_calls):
    version = user_data_version(user.pk)
    result = services.apple_health_import(user_id=user.pk, source=FIXTURE, dry_run=True)
    assert (result.dry_run, result.metrics.created, result.nutrition.created) == (True, 17, 3)
    assert not HealthMetric.objects.exists() and not NutritionLog.objects.exists()
    assert goal_calls == [] and user_data_version(user.pk) == version


def test_refused_records_are_listed_up_to_a_limit_and_all_counted(user, monkeypatch):
    monkeypatch.setattr(services, "IMPORT_ERRORS_SHOWN", 2)
    future = (datetime.datetime.now(PST) + datetime.timedelta(days=2)).strftime("%Y-%m-%d %H:%M:%S -0800")
    document = export(
        *(record("HKQuantityTypeIdentifierHeartRate", 60 + n, "count/min", start=future) for n in range(3)),
        record("HKQuantityTypeIdentifierHeartRate", 60, "count/min"),
    )
    result = services.apple_health_import(user_id=user.pk, source=document)
    assert (result.metrics.created, result.metrics.error_count, len(result.metrics.errors)) == (1, 3, 2)
    error = result.metrics.errors[0]
    assert (error["type"], error["field"]) == ("heart_rate", "recorded_at")
    assert error["external_id"].startswith("hk:heart_rate:") and error["recorded_at"].endswith("-08:00")


def test_a_format_error_reaches_the_caller(user):
    with pytest.raises(AppleHealthFormatError):
        services.apple_health_import(user_id=user.pk, source=io.BytesIO(b"<HealthData><Record"))
