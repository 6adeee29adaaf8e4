"""Linked goals follow the person's data: goals_follow_metrics, as the metrics services call it."""

import datetime
import zoneinfo

import pytest
from django.utils import timezone

from goals.models import HealthGoal
from goals.selectors import metric_current_value
from goals.services import goals_follow_metrics
from goals.tests.factories import HealthGoalFactory, WeightLossGoalFactory, record_metric
from healthtrack.cache import user_data_version
from users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def goal_json(client, goal_id):
    return client.get(f"/api/v1/health-goals/{goal_id}").json()


def local_day_at(tz: str, days_ago: int, hour: int, minute: int = 0) -> datetime.datetime:
    """A moment ``days_ago`` local days back in ``tz``, at hour:minute local time."""
    zone = zoneinfo.ZoneInfo(tz)
    day = timezone.now().astimezone(zone).date() - datetime.timedelta(days=days_ago)
    return datetime.datetime.combine(day, datetime.time(hour, minute), tzinfo=zone)


def test_weight_loss_goal_follows_new_weights_until_completed(auth_client, user):
    record_metric(user, "weight", 90.0, timezone.now() - datetime.timedelta(days=3))
    created = auth_client.post(
        "/api/v1/health-goals",
        {"goal_type": "weight_loss", "title": "Lose 10 kg", "metric_type": "weight", "target_value": 80},
        format="json",
    ).json()
    assert (created["start_value"], created["current_value"], created["progress_percent"]) == (90, 90, 0)

    record_metric(user, "weight", 85.0, timezone.now() - datetime.timedelta(days=1))
    goals_follow_metrics(user_id=user.pk, metric_types=["weight"])
    body = goal_json(auth_client, created["id"])
    assert (body["current_value"], body["progress_percent"], body["status"]) == (85, 50, "active")

    record_metric(user, "weight", 86.5)  # a bad week: progress goes back
    goals_follow_metrics(user_id=user.pk, metric_types=["weight"])
    assert goal_json(auth_client, created["id"])["progress_percent"] == 35.0

    record_metric(user, "weight", 79.6, timezone.now())
    goals_follow_metrics(user_id=user.pk, metric_types=["weight"])
    body = goal_json(auth_client, created["id"])
    assert (body["current_value"], body["progress_percent"], body["status"]) == (79.6, 100, "completed")
    assert body["completed_at"] is not None

    # A completed goal no longer follows the data.
    record_metric(user, "weight", 83.0, timezone.now())
    goals_follow_metrics(user_id=user.pk, metric_types=["weight"])
    assert goal_json(auth_client, created["id"])["current_value"] == 79.6


def test_step_goal_follows_the_seven_day_average_of_local_daily_totals(make_client):
    tz = "Asia/Tokyo"
    person = UserFactory(profile__timezone=tz)
    client = make_client(person)
    # Two local days: 00:30 and 08:30 Tokyo are 15:30 and 23:30 UTC of the day before,
    # so in UTC these four samples would straddle three days instead of two.
    record_metric(person, "steps", 1000, local_day_at(tz, 3, 0, 30))
    record_metric(person, "steps", 5000, local_day_at(tz, 3, 8, 30))
    record_metric(person, "steps", 3000, local_day_at(tz, 2, 0, 30))
    record_metric(person, "steps", 5000, local_day_at(tz, 2, 23, 50))
    record_metric(person, "steps", 50_000, local_day_at(tz, 9, 12))  # outside the 7 days
    created = client.post(
        "/api/v1/health-goals",
        {"goal_type": "step_count", "title": "10k a day", "metric_type": "steps", "target_value": 10_000},
        format="json",
    ).json()
    # (6,000 + 8,000) / 2 days with data
    assert (created["start_value"], created["current_value"], created["unit"]) == (7000, 7000, "count")

    record_metric(person, "steps", 16_000, local_day_at(tz, 1, 12))
    goals_follow_metrics(user_id=person.pk, metric_types=["steps"])
    body = goal_json(client, created["id"])
    # (6,000 + 8,000 + 16,000) / 3 = 10,000: the target is reached
    assert (body["current_value"], body["progress_percent"], body["status"]) == (10_000, 100, "completed")


def test_step_goal_progress_goes_up_before_completion(auth_client, user):
    goal = HealthGoalFactory(
        user=user, goal_type="step_count", metric_type="steps", unit="count",
        start_value=4000, current_value=4000, target_value=10_000,
    )  # fmt: skip
    record_metric(user, "steps", 7000, local_day_at("UTC", 1, 12))
    goals_follow_metrics(user_id=user.pk, metric_types=iter(["steps", "heart_rate"]))
    body = goal_json(auth_client, goal.pk)
    assert (body["current_value"], body["progress_percent"], body["status"]) == (7000, 50, "active")


def test_sample_types_follow_the_seven_day_average_of_samples(user):
    goal = HealthGoalFactory(
        user=user, goal_type="stress_reduction", metric_type="resting_heart_rate", unit="bpm",
        start_value=80, current_value=80, target_value=60,
    )  # fmt: skip
    for days_ago, value in ((1, 70), (1, 74), (2, 66), (10, 40)):
        record_metric(user, "resting_heart_rate", value, local_day_at("UTC", days_ago, 7))
    goals_follow_metrics(user_id=user.pk, metric_types=["resting_heart_rate"])
    goal.refresh_from_db()
    assert goal.current_value == 70  # (70 + 74 + 66) / 3; the sample of 40 is too old
    assert goal.status == "active"


def test_first_value_after_creation_becomes_the_start(user):
    goal = HealthGoalFactory(
        user=user, goal_type="better_sleep", metric_type="sleep", unit="h",
        start_value=None, current_value=None, target_value=8,
    )  # fmt: skip
    record_metric(user, "sleep", 6.5, local_day_at("UTC", 1, 7))
    goals_follow_metrics(user_id=user.pk, metric_types=["sleep"])
    goal.refresh_from_db()
    assert (goal.start_value, goal.current_value, goal.status) == (6.5, 6.5, "active")


def test_deleted_data_is_followed_too(user):
    record_metric(user, "weight", 88, timezone.now() - datetime.timedelta(days=2))
    typo = record_metric(user, "weight", 8.8)
    goal = WeightLossGoalFactory(user=user, start_value=90, current_value=90, target_value=80)
    typo.delete()
    goals_follow_metrics(user_id=user.pk, metric_types=["weight"])
    goal.refresh_from_db()
    assert (goal.current_value, goal.status) == (88, "active")


def test_no_data_in_the_window_is_no_current_value(user):
    record_metric(user, "exercise", 45, local_day_at("UTC", 12, 7))
    assert metric_current_value(user_id=user.pk, metric_type="exercise", tz="UTC") is None
    assert metric_current_value(user_id=user.pk, metric_type="weight", tz="UTC") is None


def test_only_active_linked_goals_of_those_types_of_that_user_follow(user, other_user):
    abandoned = WeightLossGoalFactory(user=user, status="abandoned")
    other_type = HealthGoalFactory(
        user=user, goal_type="step_count", metric_type="steps", unit="count",
        start_value=1000, current_value=1000, target_value=5000,
    )  # fmt: skip
    unlinked = HealthGoalFactory(user=user, current_value=2)
    theirs = WeightLossGoalFactory(user=other_user)
    record_metric(user, "weight", 85)
    record_metric(user, "steps", 3000)
    goals_follow_metrics(user_id=user.pk, metric_types=["weight"])
    assert HealthGoal.objects.get(pk=abandoned.pk).current_value == 90
    assert HealthGoal.objects.get(pk=other_type.pk).current_value == 1000
    assert HealthGoal.objects.get(pk=unlinked.pk).current_value == 2
    assert HealthGoal.objects.get(pk=theirs.pk).current_value == 90


def test_without_linked_active_goals_it_costs_one_query(user, django_assert_num_queries):
    HealthGoalFactory(user=user)  # follows nothing
    WeightLossGoalFactory(user=user, status="completed")
    with django_assert_num_queries(1):
        goals_follow_metrics(user_id=user.pk, metric_types=["weight", "steps"])
    with django_assert_num_queries(0):
        goals_follow_metrics(user_id=user.pk, metric_types=["not_a_metric"])
        goals_follow_metrics(user_id=user.pk, metric_types=[])


def test_following_bumps_the_data_version_only_when_a_goal_changed(user, django_assert_max_num_queries):
    WeightLossGoalFactory.create_batch(3, user=user)
    record_metric(user, "weight", 87)
    version = user_data_version(user.pk)
    with django_assert_max_num_queries(8):  # find, lock, time zone, one aggregate, one bulk update
        goals_follow_metrics(user_id=user.pk, metric_types=["weight"])
    assert list(HealthGoal.objects.values_list("current_value", flat=True)) == [87, 87, 87]
    changed = user_data_version(user.pk)
    assert changed != version
    goals_follow_metrics(user_id=user.pk, metric_types=["weight"])
    assert user_data_version(user.pk) == changed
