"""GET /api/v1/recommendations/{user_id}: the ranked top five, cached per person and window."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from healthtrack.cache import user_data_version_bump
from healthtrack.models import AuditEvent
from insights.tests.helpers import add_daily_metrics, add_goal, add_metric, unhealthy_month
from users.tests.factories import AdminFactory, CareTeamMembershipFactory, ClinicianFactory, SupportFactory

pytestmark = pytest.mark.django_db


def url(user_id, query=""):
    return f"/api/v1/recommendations/{user_id}{'?' + query if query else ''}"


def test_new_person_gets_tracking_advice(auth_client, user):
    response = auth_client.get(url(user.pk))
    assert response.status_code == 200
    body = response.json()
    assert body["user_id"] == user.pk
    assert body["days"] == 30
    assert body["cached"] is False
    assert body["generated_at"].endswith("Z")
    [advice] = body["recommendations"]
    assert advice["code"] == "missing_data"
    assert advice["rank"] == 1
    assert set(advice) == {
        "rank", "code", "title", "category", "severity", "score", "reasoning", "action_steps",
        "evidence", "related_metric_type",
    }  # fmt: skip


def test_recommendations_are_ranked_and_explained(auth_client, user):
    unhealthy_month(user, days=10)
    body = auth_client.get(url(user.pk)).json()
    codes = [item["code"] for item in body["recommendations"]]
    assert codes[:3] == ["insufficient_sleep", "low_steps", "low_water_intake"]
    assert [item["rank"] for item in body["recommendations"]] == list(range(1, len(codes) + 1))
    steps = body["recommendations"][1]
    assert steps["evidence"] == {
        "metric": "steps",
        "window_days": 30,
        "days_with_data": 10,
        "average": 3_000,
        "threshold": 5_000,
        "days_below_threshold": 10,
    }
    assert "3,000 steps a day" in steps["reasoning"]


def test_ranking_follows_goals_through_the_api(auth_client, user):
    unhealthy_month(user, days=10)
    add_goal(user, goal_type="hydration", target_value=2_000, priority="high", title="Drink more")
    codes = [item["code"] for item in auth_client.get(url(user.pk)).json()["recommendations"]]
    assert codes[0] == "low_water_intake"


def test_second_call_is_cached_and_a_new_metric_makes_it_fresh(auth_client, user, django_assert_num_queries):
    unhealthy_month(user, days=5)
    first = auth_client.get(url(user.pk)).json()
    # Cache hit: nothing but the audit row touches the database.
    with django_assert_num_queries(1):
        second = auth_client.get(url(user.pk)).json()
    assert second["cached"] is True
    assert second["generated_at"] == first["generated_at"]
    assert second["recommendations"] == first["recommendations"]

    add_daily_metrics(user, "steps", [9_000] * 5, first_days_ago=6)  # what the metrics service does ...
    user_data_version_bump(user_id=user.pk)  # ... on every write
    third = auth_client.get(url(user.pk)).json()
    assert third["cached"] is False
    assert "low_steps" not in [item["code"] for item in third["recommendations"]]


def test_cache_is_per_window(auth_client, user):
    auth_client.get(url(user.pk, "days=30"))
    assert auth_client.get(url(user.pk, "days=7")).json()["cached"] is False
    assert auth_client.get(url(user.pk, "days=7")).json()["cached"] is True
    assert auth_client.get(url(user.pk, "days=30")).json()["cached"] is True


def test_use_cache_false_recomputes_and_refreshes(auth_client, user):
    first = auth_client.get(url(user.pk)).json()
    add_daily_metrics(user, "sleep", [4.0] * 5, first_days_ago=0)  # no version bump: a stale cache
    assert auth_client.get(url(user.pk)).json()["recommendations"] == first["recommendations"]
    fresh = auth_client.get(url(user.pk, "use_cache=false")).json()
    assert fresh["cached"] is False
    assert fresh["generated_at"] >= first["generated_at"]
    assert "insufficient_sleep" in [item["code"] for item in fresh["recommendations"]]
    refreshed = auth_client.get(url(user.pk)).json()
    assert refreshed["cached"] is True
    assert refreshed["generated_at"] == fresh["generated_at"]
    assert refreshed["recommendations"] == fresh["recommendations"]


def test_works_when_the_cache_is_down(auth_client, user, settings, monkeypatch):
    monkeypatch.setattr("healthtrack.cache.user_data_version", lambda user_id: None)
    body = auth_client.get(url(user.pk)).json()
    assert body["cached"] is False
    assert auth_client.get(url(user.pk)).json()["cached"] is False


@pytest.mark.parametrize("days", ["0", "366", "-1", "abc", "1.5", ""])
def test_days_out_of_range_is_400_naming_days(auth_client, user, days):
    response = auth_client.get(url(user.pk, f"days={days}"))
    assert response.status_code == 400
    assert "days" in response.json()["errors"]


@pytest.mark.parametrize("days", [1, 365])
def test_days_bounds_are_accepted(auth_client, user, days):
    response = auth_client.get(url(user.pk, f"days={days}"))
    assert response.status_code == 200
    assert response.json()["days"] == days


def test_bad_use_cache_is_400(auth_client, user):
    response = auth_client.get(url(user.pk, "use_cache=maybe"))
    assert response.status_code == 400
    assert "use_cache" in response.json()["errors"]


def test_someone_elses_recommendations_are_404_and_audited(auth_client, user, other_user):
    unhealthy_month(other_user)
    response = auth_client.get(url(other_user.pk))
    assert response.status_code == 404
    denial = AuditEvent.objects.get(actor=user)
    assert (denial.action, denial.resource_type, denial.subject_id) == (
        "denied",
        "recommendation",
        other_user.pk,
    )


@pytest.mark.parametrize("user_id", ["999999", "99999999999999999999999"])
def test_unknown_user_is_404(make_client, user_id):
    client = make_client(AdminFactory())
    assert client.get(url(user_id)).status_code == 404


def test_unauthenticated_is_401(api_client, user):
    assert api_client.get(url(user.pk)).status_code == 401


def test_care_team_clinician_and_admin_may_read(make_client, user):
    unhealthy_month(user, days=4)
    membership = CareTeamMembershipFactory(patient=user)
    assert make_client(membership.clinician).get(url(user.pk)).status_code == 200
    assert make_client(AdminFactory()).get(url(user.pk)).status_code == 200
    assert make_client(ClinicianFactory()).get(url(user.pk)).status_code == 404
    assert make_client(SupportFactory()).get(url(user.pk)).status_code == 404


def test_inactive_person_is_404_for_admin(make_client, user):
    user.is_active = False
    user.save()
    assert make_client(AdminFactory()).get(url(user.pk)).status_code == 404


def test_every_read_is_audited(auth_client, user):
    auth_client.get(url(user.pk))
    auth_client.get(url(user.pk))
    events = AuditEvent.objects.filter(resource_type="recommendation", action="read", subject_id=user.pk)
    assert events.count() == 2


def test_trailing_slash_is_optional(auth_client, user):
    assert auth_client.get(url(user.pk) + "/").status_code == 200


def test_cached_body_is_what_was_served(auth_client, user):
    add_metric(user, "sleep", 5.0, days_ago=0)
    fresh = auth_client.get(url(user.pk))
    cached = auth_client.get(url(user.pk))
    assert cached["Content-Type"] == "application/json"
    assert cached.json() == {**fresh.json(), "cached": True}
    cache.clear()
    assert auth_client.get(url(user.pk)).json()["cached"] is False


def test_one_day_of_data_gives_only_tracking_advice(auth_client, user):
    add_metric(user, "steps", 800, days_ago=1)
    add_metric(user, "sleep", 3.5, days_ago=0)
    add_metric(user, "resting_heart_rate", 104, days_ago=0)
    add_metric(user, "blood_pressure", 150, secondary=95, days_ago=0)
    add_metric(user, "weight", 140.0, days_ago=0)
    body = auth_client.get(url(user.pk)).json()
    assert [item["code"] for item in body["recommendations"]] == ["missing_data"]
    evidence = body["recommendations"][0]["evidence"]
    assert evidence["sparse"] == ["steps", "sleep", "weight"]
    assert evidence["missing"] == ["meals", "water"]
