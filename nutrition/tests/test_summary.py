import datetime
import zoneinfo

import pytest
from django.utils import timezone

from healthtrack.models import AuditEvent
from nutrition.tests.factories import NutritionLogFactory, WaterLogFactory
from users.tests.factories import AdminFactory, CareTeamMembershipFactory, ClinicianFactory, UserFactory

pytestmark = pytest.mark.django_db

SUMMARY = "/api/v1/nutrition-logs/summary"
ZEROS = {"calories": 0.0, "protein_g": 0.0, "carbs_g": 0.0, "fat_g": 0.0, "water_ml": 0.0, "entries": 0}


def utc_midnight_days_ago(days: int) -> datetime.datetime:
    today = timezone.now().astimezone(datetime.UTC).date()
    return datetime.datetime.combine(
        today - datetime.timedelta(days=days), datetime.time.min, tzinfo=datetime.UTC
    )


def local_today(tz: str) -> datetime.date:
    return timezone.now().astimezone(zoneinfo.ZoneInfo(tz)).date()


def earlier_today(tz: str, minutes: int) -> datetime.datetime:
    """``minutes`` ago, but never before the local midnight (so the test holds at 00:05)."""
    now = timezone.now()
    midnight = datetime.datetime.combine(local_today(tz), datetime.time.min, tzinfo=zoneinfo.ZoneInfo(tz))
    return max(now - datetime.timedelta(minutes=minutes), midnight)


def by_date(body) -> dict:
    return {row["date"]: {k: v for k, v in row.items() if k != "date"} for row in body["daily"]}


def log_around_utc_midnight(user, midnight):
    """One meal 30 minutes before and a drink 30 minutes after a UTC midnight."""
    NutritionLogFactory(
        user=user, calories=500, protein_g=20, carbs_g=60, fat_g=15,
        logged_at=midnight - datetime.timedelta(minutes=30),
    )  # fmt: skip
    WaterLogFactory(user=user, water_ml=250, logged_at=midnight + datetime.timedelta(minutes=30))


@pytest.mark.parametrize(
    ("tz", "day_offset"),
    [
        # 23:30 and 00:30 UTC are both the afternoon of the day before in Los Angeles...
        ("America/Los_Angeles", -1),
        # ...and both the morning of the same day in Tokyo.
        ("Asia/Tokyo", 0),
    ],
)
def test_entries_near_utc_midnight_fall_on_the_users_local_day(make_client, tz, day_offset):
    person = UserFactory(profile__timezone=tz)
    midnight = utc_midnight_days_ago(2)
    log_around_utc_midnight(person, midnight)

    response = make_client(person).get(SUMMARY + "?days=7")
    assert response.status_code == 200
    body = response.json()
    assert body["timezone"] == tz and body["days"] == 7 and body["user_id"] == person.pk
    assert body["end_date"] == local_today(tz).isoformat()
    assert len(body["daily"]) == 7
    assert [row["date"] for row in body["daily"]] == sorted(row["date"] for row in body["daily"])
    expected_day = (midnight.date() + datetime.timedelta(days=day_offset)).isoformat()
    days = by_date(body)
    assert days.pop(expected_day) == {
        "calories": 500.0, "protein_g": 20.0, "carbs_g": 60.0, "fat_g": 15.0, "water_ml": 250.0, "entries": 2,
    }  # fmt: skip
    assert all(row == ZEROS for row in days.values())


def test_utc_user_sees_the_same_entries_split_over_two_days(auth_client, user):
    midnight = utc_midnight_days_ago(2)
    log_around_utc_midnight(user, midnight)
    days = by_date(auth_client.get(SUMMARY).json())
    assert days[(midnight.date() - datetime.timedelta(days=1)).isoformat()]["calories"] == 500
    assert days[midnight.date().isoformat()]["water_ml"] == 250


def test_local_midnight_splits_the_day_in_los_angeles(make_client):
    tz = zoneinfo.ZoneInfo("America/Los_Angeles")
    person = UserFactory(profile__timezone="America/Los_Angeles")
    day = local_today("America/Los_Angeles") - datetime.timedelta(days=3)
    before = datetime.datetime.combine(day, datetime.time(23, 50), tzinfo=tz)
    after = datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time(0, 10), tzinfo=tz)
    NutritionLogFactory(user=person, calories=700, logged_at=before)
    NutritionLogFactory(user=person, calories=300, logged_at=after)
    days = by_date(make_client(person).get(SUMMARY).json())
    assert days[day.isoformat()]["calories"] == 700
    assert days[(day + datetime.timedelta(days=1)).isoformat()]["calories"] == 300


def test_window_excludes_older_entries_and_defaults_to_seven_days(auth_client, user):
    NutritionLogFactory(user=user, calories=400, logged_at=timezone.now() - datetime.timedelta(days=8))
    NutritionLogFactory(user=user, calories=100, logged_at=timezone.now() - datetime.timedelta(minutes=1))
    body = auth_client.get(SUMMARY).json()
    assert body["days"] == 7 and len(body["daily"]) == 7
    assert sum(row["calories"] for row in body["daily"]) == 100
    assert body["daily"][-1]["date"] == local_today("UTC").isoformat()


def test_totals_sum_several_entries_and_round(auth_client, user):
    at = earlier_today("UTC", 10)
    for _ in range(3):
        NutritionLogFactory(user=user, calories=0.1, protein_g=None, carbs_g=0.2, fat_g=None, logged_at=at)
    today = auth_client.get(SUMMARY + "?days=1").json()["daily"]
    assert today == [
        {"date": local_today("UTC").isoformat(), "calories": 0.3, "protein_g": 0.0, "carbs_g": 0.6,
         "fat_g": 0.0, "water_ml": 0.0, "entries": 3},
    ]  # fmt: skip


def test_summary_is_cached_and_fresh_after_every_write(auth_client, user):
    first = auth_client.get(SUMMARY).json()
    assert first["cached"] is False
    assert first["daily"][-1]["entries"] == 0
    assert auth_client.get(SUMMARY).json()["cached"] is True

    created = auth_client.post("/api/v1/nutrition-logs", {"meal_type": "lunch", "calories": 640}).json()
    after_create = auth_client.get(SUMMARY).json()
    assert after_create["cached"] is False
    assert after_create["daily"][-1]["calories"] == 640

    auth_client.patch(f"/api/v1/nutrition-logs/{created['id']}", {"calories": 600}, format="json")
    assert auth_client.get(SUMMARY).json()["daily"][-1]["calories"] == 600

    auth_client.delete(f"/api/v1/nutrition-logs/{created['id']}")
    assert auth_client.get(SUMMARY).json()["daily"][-1] == {"date": local_today("UTC").isoformat(), **ZEROS}


def test_cache_is_per_window(auth_client, user):
    NutritionLogFactory(user=user, calories=100, logged_at=timezone.now() - datetime.timedelta(days=3))
    assert sum(r["calories"] for r in auth_client.get(SUMMARY + "?days=2").json()["daily"]) == 0
    assert sum(r["calories"] for r in auth_client.get(SUMMARY + "?days=7").json()["daily"]) == 100


def test_summary_queries(auth_client, user, django_assert_num_queries):
    NutritionLogFactory.create_batch(5, user=user)
    auth_client.get("/api/v1/users/me")  # warm the authentication snapshot
    with django_assert_num_queries(2):  # one GROUP BY + audit row
        assert auth_client.get(SUMMARY + "?days=30").json()["cached"] is False
    with django_assert_num_queries(1):  # audit row only
        assert auth_client.get(SUMMARY + "?days=30").json()["cached"] is True


@pytest.mark.parametrize("days", ["0", "366", "-1", "seven", "1.5", ""])
def test_days_out_of_range_is_400(auth_client, days):
    response = auth_client.get(f"{SUMMARY}?days={days}")
    assert response.status_code == 400
    assert "days" in response.json()["errors"]


def test_a_year_is_allowed(auth_client):
    body = auth_client.get(SUMMARY + "?days=365").json()
    assert len(body["daily"]) == 365


def test_another_users_summary_is_404_and_audited(auth_client, user, other_user):
    NutritionLogFactory(user=other_user)
    assert auth_client.get(f"{SUMMARY}?user_id={other_user.pk}").status_code == 404
    event = AuditEvent.objects.get()
    assert (event.action, event.subject_id) == ("denied", other_user.pk)


def test_care_team_clinician_and_admin_read_a_patients_summary(make_client):
    patient = UserFactory(profile__timezone="Asia/Tokyo")
    NutritionLogFactory(user=patient, calories=321, logged_at=earlier_today("Asia/Tokyo", 1))
    clinician = ClinicianFactory()
    CareTeamMembershipFactory(patient=patient, clinician=clinician)
    for reader in (clinician, AdminFactory()):
        response = make_client(reader).get(f"{SUMMARY}?user_id={patient.pk}&days=2")
        assert response.status_code == 200
        body = response.json()
        assert body["user_id"] == patient.pk and body["timezone"] == "Asia/Tokyo"
        assert body["daily"][-1]["calories"] == 321
    event = AuditEvent.objects.order_by("id").first()
    assert (event.action, event.actor_id, event.subject_id) == ("read", clinician.pk, patient.pk)


def test_clinician_outside_the_care_team_and_admin_for_nobody_get_404(make_client, user):
    assert make_client(ClinicianFactory()).get(f"{SUMMARY}?user_id={user.pk}").status_code == 404
    assert make_client(AdminFactory()).get(f"{SUMMARY}?user_id=987654").status_code == 404
