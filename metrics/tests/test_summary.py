import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from healthtrack.models import AuditEvent
from metrics.selectors import metric_daily_series
from metrics.serializers import (
    MetricDailyPointSerializer,
    MetricSummarySerializer,
    MetricTypeSummarySerializer,
)
from metrics.tests.factories import HealthMetricFactory
from metrics.tests.helpers import METRICS, SUMMARY
from users.tests.factories import CareTeamMembershipFactory, ClinicianFactory, UserFactory

pytestmark = pytest.mark.django_db

TODAY_UTC = timezone.now().date()
DAY = TODAY_UTC - datetime.timedelta(days=3)  # "D": far enough back for every zone's window
MIDNIGHT = datetime.datetime.combine(DAY, datetime.time.min, tzinfo=datetime.UTC)


def utc(hours: float) -> datetime.datetime:
    """``hours`` after midnight UTC starting day D."""
    return MIDNIGHT + datetime.timedelta(hours=hours)


def day(offset: int) -> str:
    return (DAY + datetime.timedelta(days=offset)).isoformat()


def add(user, metric_type, value, at, **extra):
    return HealthMetricFactory(user=user, metric_type=metric_type, value=value, recorded_at=at, **extra)


def assert_matches_schema(body):
    assert set(body) == set(MetricSummarySerializer().fields)
    for summary in body["metrics"].values():
        assert set(summary) == set(MetricTypeSummarySerializer().fields)
        for point in summary["daily"]:
            assert set(point) == set(MetricDailyPointSerializer().fields)
    serializer = MetricSummarySerializer(data=body)
    assert serializer.is_valid(), serializer.errors


def steps_near_midnight_utc(user):
    """Seven samples whose local day depends on the zone (see the tests below)."""
    for value, hours in ((1000, -0.5), (2000, 6), (4000, 9), (8000, 14), (16000, 16), (32000, 23.5)):
        add(user, "steps", value, utc(hours))


def daily_steps(client, user):
    response = client.get(SUMMARY, {"metric_type": "steps"})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert_matches_schema(body)
    return body, {p["date"]: (p["value"], p["count"]) for p in body["metrics"]["steps"]["daily"]}


def test_steps_summed_per_local_day_in_los_angeles(make_client):
    person = UserFactory(profile__timezone="America/Los_Angeles")
    steps_near_midnight_utc(person)
    body, daily = daily_steps(make_client(person), person)

    # UTC-7/-8: 23:30Z and 06:00Z are still day D-1; 09:00Z, 14:00Z, 16:00Z, 23:30Z are day D.
    assert daily == {day(-1): (3000, 2), day(0): (60000, 4)}
    assert body["timezone"] == "America/Los_Angeles"
    steps = body["metrics"]["steps"]
    # A sum type: avg/min/max are over the daily totals (average daily steps).
    assert (steps["count"], steps["days_with_data"]) == (6, 2)
    assert (steps["avg"], steps["min"], steps["max"]) == (31500, 3000, 60000)
    assert steps["latest"]["value"] == 32000


def test_steps_summed_per_local_day_in_tokyo(make_client):
    person = UserFactory(profile__timezone="Asia/Tokyo")
    steps_near_midnight_utc(person)
    _, daily = daily_steps(make_client(person), person)

    # UTC+9: 23:30Z (D-1) through 14:00Z are day D; 16:00Z and 23:30Z are day D+1.
    assert daily == {day(0): (15000, 4), day(1): (48000, 2)}


def test_same_samples_in_utc_split_at_utc_midnight(auth_client, user):
    steps_near_midnight_utc(user)
    _, daily = daily_steps(auth_client, user)
    assert daily == {day(-1): (1000, 1), day(0): (62000, 5)}


def test_weight_daily_value_is_the_days_latest(auth_client, user):
    add(user, "weight", 71.0, utc(9))
    add(user, "weight", 70.0, utc(24 + 8))
    add(user, "weight", 69.4, utc(24 + 20))  # the day's latest, inserted before an earlier one
    add(user, "weight", 69.8, utc(24 + 12))
    body = auth_client.get(SUMMARY, {"metric_type": "weight"}).json()
    weight = body["metrics"]["weight"]

    assert [(p["date"], p["value"], p["avg"], p["count"]) for p in weight["daily"]] == [
        (day(0), 71.0, 71.0, 1),
        (day(1), 69.4, 69.73, 3),
    ]
    assert weight["daily_aggregate"] == "latest"
    # Not a sum type: avg/min/max over samples.
    assert (weight["avg"], weight["min"], weight["max"], weight["count"]) == (70.05, 69.4, 71.0, 4)
    assert weight["latest"] == {
        "value": 69.4,
        "secondary_value": None,
        "recorded_at": utc(24 + 20).isoformat().replace("+00:00", "Z"),
    }


def test_heart_rate_averaged_per_day(auth_client, user):
    for value, hours in ((60, 8), (80, 12), (70, 20), (90, 24 + 10)):
        add(user, "heart_rate", value, utc(hours))
    heart = auth_client.get(SUMMARY).json()["metrics"]["heart_rate"]

    first, second = heart["daily"]
    assert (first["value"], first["min"], first["max"], first["sum"], first["count"]) == (70, 60, 80, 210, 3)
    assert second["value"] == 90
    assert (heart["avg"], heart["min"], heart["max"]) == (75, 60, 90)
    assert heart["secondary"] is None and first["secondary"] is None


def test_sleep_counts_on_the_wake_up_day(make_client):
    person = UserFactory(profile__timezone="Europe/Paris")
    # Woke at 07:30 Paris time on D+1 after 7.5 h; a half-hour nap that afternoon.
    add(person, "sleep", 7.5, utc(24 + 6.5))
    add(person, "sleep", 0.5, utc(24 + 14))
    sleep = make_client(person).get(SUMMARY).json()["metrics"]["sleep"]
    assert [(p["date"], p["value"]) for p in sleep["daily"]] == [(day(1), 8.0)]
    assert sleep["avg"] == 8.0


def test_blood_pressure_includes_diastolic(auth_client, user):
    add(user, "blood_pressure", 120, utc(8), secondary_value=80)
    add(user, "blood_pressure", 130, utc(9), secondary_value=90)
    add(user, "blood_pressure", 140, utc(24 + 9), secondary_value=95)
    bp = auth_client.get(SUMMARY).json()["metrics"]["blood_pressure"]

    assert bp["secondary"] == {"avg": 88.33, "min": 80, "max": 95}
    assert bp["daily"][0]["value"] == 125 and bp["daily"][0]["secondary"] == {"avg": 85, "min": 80, "max": 90}
    assert bp["latest"] == {
        "value": 140,
        "secondary_value": 95,
        "recorded_at": utc(24 + 9).isoformat().replace("+00:00", "Z"),
    }


def test_all_types_and_only_those_with_data(auth_client, user, other_user):
    add(user, "steps", 10, utc(1))
    add(user, "oxygen_saturation", 97, utc(2))
    add(other_user, "weight", 80, utc(3))
    body = auth_client.get(SUMMARY).json()
    assert set(body["metrics"]) == {"steps", "oxygen_saturation"}
    assert (body["days"], body["user_id"]) == (30, user.pk)
    assert body["end_date"] == timezone.now().date().isoformat()
    assert_matches_schema(body)


def test_empty_summary(auth_client):
    body = auth_client.get(SUMMARY).json()
    assert body["metrics"] == {}
    assert_matches_schema(body)


def test_days_window_is_local_days_including_today(make_client):
    person = UserFactory(profile__timezone="Asia/Tokyo")
    now = timezone.now()
    add(person, "steps", 5, now)
    add(person, "steps", 7, now - datetime.timedelta(days=2))
    client = make_client(person)
    one = client.get(SUMMARY, {"days": 1}).json()
    assert one["metrics"]["steps"]["count"] == 1
    assert one["start_date"] == one["end_date"]
    assert client.get(SUMMARY, {"days": 3}).json()["metrics"]["steps"]["count"] == 2


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"days": 0}, "days"),
        ({"days": 366}, "days"),
        ({"days": "week"}, "days"),
        ({"metric_type": "x"}, "metric_type"),
    ],
)
def test_bad_parameters_are_400(auth_client, query, field):
    response = auth_client.get(SUMMARY, query)
    assert response.status_code == 400
    assert field in response.json()["errors"]


# --- Cache ---------------------------------------------------------------------------------


def test_cache_hit_then_fresh_after_a_write(auth_client, user, django_assert_num_queries):
    add(user, "steps", 1000, timezone.now() - datetime.timedelta(minutes=5))
    auth_client.get("/api/v1/users/me")  # warm the authentication snapshot

    # daily series + totals + audit row
    with django_assert_num_queries(3):
        first = auth_client.get(SUMMARY).json()
    # only the audit row
    with django_assert_num_queries(1):
        second = auth_client.get(SUMMARY).json()
    assert (first["cached"], second["cached"]) == (False, True)
    assert second["metrics"] == first["metrics"]

    assert auth_client.post(METRICS, {"metric_type": "steps", "value": 500}, format="json").status_code == 201
    with CaptureQueriesContext(connection) as queries:
        third = auth_client.get(SUMMARY).json()
    assert third["cached"] is False and len(queries) == 3
    assert third["metrics"]["steps"]["count"] == 2


@pytest.mark.parametrize("write", ["patch", "delete", "bulk"])
def test_every_kind_of_write_refreshes_the_summary(auth_client, user, write):
    metric = add(user, "steps", 1000, timezone.now() - datetime.timedelta(minutes=5))
    assert auth_client.get(SUMMARY).json()["metrics"]["steps"]["count"] == 1
    assert auth_client.get(SUMMARY).json()["cached"] is True
    if write == "patch":
        auth_client.patch(f"{METRICS}/{metric.pk}", {"value": 3000}, format="json")
    elif write == "delete":
        auth_client.delete(f"{METRICS}/{metric.pk}")
    else:
        auth_client.post(
            f"{METRICS}/bulk", {"samples": [{"metric_type": "steps", "value": 1}]}, format="json"
        )
    body = auth_client.get(SUMMARY).json()
    assert body["cached"] is False
    steps = body["metrics"].get("steps")
    if write == "patch":
        assert steps["count"] == 1 and steps["latest"]["value"] == 3000
    elif write == "delete":
        assert steps is None
    else:
        assert steps["count"] == 2


def test_parameters_are_cached_separately(auth_client, user):
    add(user, "steps", 10, timezone.now() - datetime.timedelta(days=5))
    assert auth_client.get(SUMMARY, {"days": 30}).json()["metrics"]["steps"]["count"] == 1
    assert auth_client.get(SUMMARY, {"days": 2}).json()["metrics"] == {}
    assert auth_client.get(SUMMARY, {"metric_type": "weight"}).json()["metrics"] == {}


# --- Whose data --------------------------------------------------------------------------------


def test_summary_of_another_user_is_404(auth_client, user, other_user):
    add(other_user, "steps", 10, utc(1))
    response = auth_client.get(SUMMARY, {"user_id": other_user.pk})
    assert response.status_code == 404
    event = AuditEvent.objects.get()
    assert (event.action, event.subject_id) == ("denied", other_user.pk)


def test_care_team_clinician_reads_patient_summary_in_patient_zone(make_client, django_assert_num_queries):
    patient = UserFactory(profile__timezone="Asia/Tokyo")
    clinician = ClinicianFactory(profile__timezone="America/Los_Angeles")
    CareTeamMembershipFactory(patient=patient, clinician=clinician)
    steps_near_midnight_utc(patient)
    client = make_client(clinician)
    client.get("/api/v1/users/me")
    # care team + patient's zone + daily series + totals + audit row
    with django_assert_num_queries(5):
        response = client.get(SUMMARY, {"user_id": patient.pk, "metric_type": "steps"})
    body = response.json()
    assert body["timezone"] == "Asia/Tokyo" and body["user_id"] == patient.pk
    assert {p["date"]: p["value"] for p in body["metrics"]["steps"]["daily"]} == {
        day(0): 15000,
        day(1): 48000,
    }
    event = AuditEvent.objects.get(action="read", resource_type="metric")
    assert (event.actor_id, event.subject_id) == (clinician.pk, patient.pk)


def test_superuser_reads_anyone_but_404_for_no_one(admin_client, user):
    assert admin_client.get(SUMMARY, {"user_id": user.pk}).status_code == 200
    assert admin_client.get(SUMMARY, {"user_id": 999999}).status_code == 404
    assert admin_client.get(SUMMARY, {"user_id": "abc"}).status_code == 404


# --- The selector the admin charts reuse ---------------------------------------------------


def test_metric_daily_series_selector(user):
    add(user, "steps", 100, utc(1))
    add(user, "steps", 50, utc(2))
    add(user, "heart_rate", 60, utc(3))
    add(user, "steps", 999, utc(30))  # outside [since, until)
    series = metric_daily_series(
        user_id=user.pk, metric_types=["steps", "heart_rate"], since=utc(0), until=utc(24), tz="Asia/Tokyo"
    )
    assert set(series) == {"steps", "heart_rate"}
    (point,) = series["steps"]
    assert (point["date"], point["value"], point["sum"], point["count"]) == (day(0), 150, 150, 2)
    assert point["latest"]["value"] == 50


def test_selectors_with_no_types_answer_empty(user):
    from metrics.selectors import metric_totals

    assert metric_daily_series(user_id=user.pk, metric_types=[], since=utc(0), until=utc(24), tz="UTC") == {}
    assert metric_totals(user_id=user.pk, metric_types=[], since=utc(0), until=utc(24), tz="UTC") == {}


def test_an_invalid_stored_zone_falls_back_to_utc(make_client):
    from users.models import Profile

    person = UserFactory()
    Profile.objects.filter(user=person).update(timezone="Nowhere/Land")
    add(person, "steps", 10, utc(1))
    body = make_client(person).get(SUMMARY).json()
    assert body["timezone"] == "UTC" and body["metrics"]["steps"]["count"] == 1
