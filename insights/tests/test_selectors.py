"""Features from the database: one aggregate pass per batch, each person's own local days."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from goals.models import HealthGoal
from insights import selectors
from insights.tests.helpers import add_daily_meals, add_daily_metrics, add_goal, add_metric
from metrics.models import HealthMetric
from nutrition.models import NutritionLog
from users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2026, 3, 10, 12, 0, tzinfo=datetime.UTC)


def _metric(user, metric_type, value, at, secondary=None, unit="count"):
    return HealthMetric.objects.create(
        user=user, metric_type=metric_type, value=value, secondary_value=secondary, unit=unit, recorded_at=at
    )


def _utc(day, hour, minute=0):
    return datetime.datetime(2026, 3, day, hour, minute, tzinfo=datetime.UTC)


def test_days_are_each_persons_local_days():
    la = UserFactory(profile__timezone="America/Los_Angeles")
    tokyo = UserFactory(profile__timezone="Asia/Tokyo")
    for person in (la, tokyo):
        _metric(person, "steps", 1_000, _utc(8, 4, 30))  # LA: 7 Mar evening; Tokyo: 8 Mar afternoon
        _metric(person, "steps", 2_000, _utc(8, 16, 30))  # LA: 8 Mar morning; Tokyo: 9 Mar 01:30
    batch = selectors.insight_features_for_users(user_ids=[la.pk, tokyo.pk], days=30, now=NOW)
    la_steps = {day: value.value for day, value in batch.features[la.pk].metrics["steps"].items()}
    tokyo_steps = {day: value.value for day, value in batch.features[tokyo.pk].metrics["steps"].items()}
    assert la_steps == {datetime.date(2026, 3, 7): 1_000, datetime.date(2026, 3, 8): 2_000}
    assert tokyo_steps == {datetime.date(2026, 3, 8): 1_000, datetime.date(2026, 3, 9): 2_000}
    assert batch.features[la.pk].today == datetime.date(2026, 3, 10)
    assert batch.features[tokyo.pk].today == datetime.date(2026, 3, 10)


def test_daily_aggregates_follow_the_registry():
    person = UserFactory(profile__timezone="UTC", profile__gender="male", profile__height_cm=181.0,
                         profile__date_of_birth=datetime.date(1980, 3, 11))  # fmt: skip
    _metric(person, "steps", 1_000, _utc(9, 8))
    _metric(person, "steps", 2_500, _utc(9, 18))  # summed
    _metric(person, "resting_heart_rate", 60, _utc(9, 7), unit="bpm")
    _metric(person, "resting_heart_rate", 70, _utc(9, 20), unit="bpm")  # averaged
    _metric(person, "weight", 80.0, _utc(9, 7), unit="kg")
    _metric(person, "weight", 79.4, _utc(9, 21), unit="kg")  # the latest of the day
    _metric(person, "weight", 81.0, _utc(9, 12), unit="kg")
    _metric(person, "blood_pressure", 120, _utc(9, 8), secondary=80, unit="mmHg")
    _metric(person, "blood_pressure", 140, _utc(9, 20), secondary=90, unit="mmHg")
    _metric(person, "blood_glucose", 95, _utc(9, 7), unit="mg/dL")
    _metric(person, "blood_glucose", 150, _utc(9, 13), unit="mg/dL")
    _metric(person, "heart_rate", 150, _utc(9, 13), unit="bpm")  # no rule reads it
    NutritionLog.objects.create(
        user=person, meal_type="lunch", calories=700, protein_g=30, logged_at=_utc(9, 12)
    )
    NutritionLog.objects.create(
        user=person, meal_type="dinner", calories=800, fat_g=20, logged_at=_utc(9, 19)
    )
    NutritionLog.objects.create(user=person, meal_type="water", water_ml=500, logged_at=_utc(9, 20))

    features = selectors.insight_features_for_users(user_ids=[person.pk], days=30, now=NOW).features[
        person.pk
    ]
    day = datetime.date(2026, 3, 9)
    assert features.metrics["steps"][day].value == 3_500
    assert features.metrics["resting_heart_rate"][day].value == 65
    assert features.metrics["weight"][day].value == 79.4
    pressure = features.metrics["blood_pressure"][day]
    assert (pressure.value, pressure.secondary, pressure.maximum, pressure.secondary_max) == (
        130,
        85,
        140,
        90,
    )
    glucose = features.metrics["blood_glucose"][day]
    assert (glucose.minimum, glucose.maximum) == (95, 150)
    assert "heart_rate" not in features.metrics
    totals = features.nutrition[day]
    assert (totals.calories, totals.protein_g, totals.fat_g, totals.carbs_g, totals.water_ml) == (
        1_500, 30, 20, None, 500,
    )  # fmt: skip
    assert features.profile.age_years == 45  # turns 46 tomorrow
    assert features.profile.sex == "male"
    assert features.profile.height_cm == 181.0


def test_window_is_the_last_days_local_days():
    person = UserFactory()
    _metric(person, "steps", 1, _utc(1, 0, 0))  # 10 days before today: outside a 7-day window
    _metric(person, "steps", 2, _utc(4, 0, 0))  # first day of the window
    features = selectors.insight_features_for_users(user_ids=[person.pk], days=7, now=NOW).features[person.pk]
    assert list(features.metrics["steps"]) == [datetime.date(2026, 3, 4)]


def test_goals_are_converted_to_canonical_units():
    person = UserFactory()
    HealthGoal.objects.create(user=person, goal_type="weight_loss", title="Lose", metric_type="weight",
                              start_value=200, target_value=180, unit="lb", priority="high")  # fmt: skip
    HealthGoal.objects.create(user=person, goal_type="hydration", title="Drink", target_value=2.5, unit="L")
    HealthGoal.objects.create(
        user=person, goal_type="step_count", title="Old", target_value=1, status="completed"
    )
    features = selectors.insight_features_for_users(user_ids=[person.pk], days=30, now=NOW).features[
        person.pk
    ]
    lose, drink = features.goals
    assert lose.metric_type == "weight" and round(lose.target_value, 2) == 81.65
    assert round(lose.start_value, 2) == 90.72
    assert drink.metric_type == "water" and drink.target_value == 2_500
    assert features.profile.weight_unit == "lb"


def test_unknown_and_inactive_users_are_absent():
    active, inactive = UserFactory(), UserFactory(is_active=False)
    batch = selectors.insight_features_for_users(user_ids=[active.pk, inactive.pk, 999_999], days=30, now=NOW)
    assert set(batch.features) == {active.pk}


def _rich_user():
    person = UserFactory(profile__timezone="Europe/Berlin")
    add_daily_metrics(person, "steps", [4_000] * 5)
    add_daily_metrics(person, "sleep", [6.0] * 5)
    add_daily_metrics(person, "weight", [80.0] * 5)
    add_daily_metrics(person, "blood_pressure", [135] * 5, secondary=85)
    add_daily_meals(person, 5, calories=1_800, protein_g=60, fat_g=70, water_ml=1_500)
    add_goal(person, goal_type="step_count", target_value=8_000)
    add_metric(person, "oxygen_saturation", 97)
    return person


def test_query_count_does_not_grow_with_users_or_data():
    few = [_rich_user().pk for _ in range(2)]
    many = [_rich_user().pk for _ in range(12)]
    with CaptureQueriesContext(connection) as small:
        small_batch = selectors.insight_features_for_users(user_ids=few, days=30)
    with CaptureQueriesContext(connection) as large:
        large_batch = selectors.insight_features_for_users(user_ids=many, days=30)
    assert len(small_batch.features) == 2 and len(large_batch.features) == 12
    # profiles, goals, metric day aggregates, latest-of-day values, nutrition totals
    assert len(small.captured_queries) == len(large.captured_queries) == 5


def test_compute_user_ids_filters():
    now = datetime.datetime.now(tz=datetime.UTC)
    people = [UserFactory() for _ in range(6)]
    UserFactory(is_active=False)
    staff = UserFactory(is_staff=True)
    add_metric(people[0], "steps", 100, days_ago=2)
    add_daily_meals(people[1], 1, first_days_ago=5, calories=500)
    add_metric(people[2], "steps", 100, days_ago=40)
    ids = [person.pk for person in people]
    assert selectors.insight_compute_user_ids() == ids
    assert selectors.insight_compute_user_ids(user_ids=[ids[3], staff.pk]) == [ids[3], staff.pk]
    assert selectors.insight_compute_user_ids(since_active_days=7, now=now) == ids[:2]
    shards = [selectors.insight_compute_user_ids(shard=(k, 3)) for k in range(3)]
    assert sorted(user_id for shard in shards for user_id in shard) == ids
    assert all(user_id % 3 == k for k, shard in enumerate(shards) for user_id in shard)
