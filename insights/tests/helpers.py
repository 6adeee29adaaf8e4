"""Builders for the insights tests: engine features by hand, and rows in the other apps'
tables (their factories belong to their own apps; these only insert what the engine reads)."""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from django.utils import timezone

from goals.models import HealthGoal
from insights.engine import DayValue, GoalFact, NutritionDay, ProfileFacts, UserFeatures
from metrics.models import HealthMetric
from metrics.registry import METRIC_TYPES
from nutrition.models import NutritionLog

TODAY = datetime.date(2026, 3, 31)


# --- Pure features ------------------------------------------------------------------


def days_back(values: Iterable, *, end: datetime.date = TODAY, skip_today: bool = False) -> dict:
    """``{day: value}`` for consecutive days ending ``end`` (or the day before), the last
    value on the latest day."""
    values = list(values)
    last = end - datetime.timedelta(days=1) if skip_today else end
    return {
        last - datetime.timedelta(days=len(values) - 1 - index): value for index, value in enumerate(values)
    }


def series(values: Iterable[float], *, skip_today: bool = False, **extra) -> dict:
    """A metric series of plain day values (``extra``: minimum, secondary ... for every day)."""
    return {
        day: DayValue(value=value, **extra) for day, value in days_back(values, skip_today=skip_today).items()
    }


def features(
    *,
    metrics: dict | None = None,
    nutrition: dict | None = None,
    goals: Iterable[GoalFact] = (),
    window_days: int = 30,
    today: datetime.date = TODAY,
    **profile,
) -> UserFeatures:
    return UserFeatures(
        user_id=1,
        today=today,
        window_days=window_days,
        profile=ProfileFacts(**profile),
        metrics=metrics or {},
        nutrition=nutrition or {},
        goals=tuple(goals),
    )


def nutrition_days(count: int, **totals) -> dict:
    """``count`` complete days (ending yesterday) with the same totals."""
    return days_back([NutritionDay(**totals)] * count, skip_today=True)


def goal(goal_id: int = 1, **values) -> GoalFact:
    values.setdefault("goal_type", "custom")
    values.setdefault("metric_type", "")
    values.setdefault("priority", "medium")
    values.setdefault("target_value", 0.0)
    return GoalFact(id=goal_id, **values)


# --- Database rows ------------------------------------------------------------------


def at_days_ago(days: int, *, hour: int = 12, now: datetime.datetime | None = None) -> datetime.datetime:
    """Noon UTC ``days`` days ago (the user's local day, for UTC users)."""
    now = now or timezone.now()
    moment = (now - datetime.timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return min(moment, now)


def add_metric(user, metric_type: str, value: float, *, days_ago: int = 1, secondary=None, hour: int = 12):
    return HealthMetric.objects.create(
        user=user,
        metric_type=metric_type,
        value=value,
        secondary_value=secondary,
        unit=METRIC_TYPES[metric_type].canonical_unit,
        recorded_at=at_days_ago(days_ago, hour=hour),
    )


def add_daily_metrics(
    user, metric_type: str, values: Iterable[float], *, first_days_ago: int = 1, secondary=None
):
    """One sample a day: ``values[0]`` ``first_days_ago`` days ago, the next a day earlier ..."""
    rows = [
        HealthMetric(
            user=user,
            metric_type=metric_type,
            value=value,
            secondary_value=secondary,
            unit=METRIC_TYPES[metric_type].canonical_unit,
            recorded_at=at_days_ago(first_days_ago + index),
        )
        for index, value in enumerate(values)
    ]
    return HealthMetric.objects.bulk_create(rows)


def add_daily_meals(user, days: int, *, first_days_ago: int = 1, **nutrients):
    rows = [
        NutritionLog(user=user, meal_type="lunch", logged_at=at_days_ago(first_days_ago + index), **nutrients)
        for index in range(days)
    ]
    return NutritionLog.objects.bulk_create(rows)


def add_goal(user, **values) -> HealthGoal:
    values.setdefault("goal_type", "custom")
    values.setdefault("title", "A goal")
    values.setdefault("target_value", 0)
    return HealthGoal.objects.create(user=user, **values)


def unhealthy_month(user, *, days: int = 10) -> None:
    """Data that trips several rules: few steps, short nights, little water."""
    add_daily_metrics(user, "steps", [3_000] * days)
    add_daily_metrics(user, "sleep", [5.5] * days, first_days_ago=0)
    add_daily_meals(user, days, calories=2_000, protein_g=100, fat_g=60, water_ml=800)
