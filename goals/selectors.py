"""Reads of goals, and the value of a metric type a linked goal follows."""

from __future__ import annotations

import datetime

from django.db.models import Avg, Count, F, FloatField, QuerySet, Sum
from django.db.models.functions import Cast, NullIf

from goals.models import GoalStatus, HealthGoal
from healthtrack.db import compiled_rows, compiled_sql, local_date, local_day_window
from metrics.models import HealthMetric
from metrics.registry import DailyAggregate, get_metric_type

# Linked goals follow the last 7 local days (today included) of sum and average types.
FOLLOW_WINDOW_DAYS = 7


def goal_get(*, goal_id: int) -> HealthGoal | None:
    return HealthGoal.objects.filter(pk=goal_id).first()


def _followed_types(*, user_id: int, metric_types: list[str]) -> QuerySet:
    return (
        HealthGoal.objects.filter(user_id=user_id, status=GoalStatus.ACTIVE, metric_type__in=metric_types)
        .order_by()  # the model's ordering would make DISTINCT keep one row per goal
        .values_list("metric_type", flat=True)
        .distinct()
    )


def goal_followed_metric_types(*, user_id: int, metric_types: list[str]) -> list[str]:
    """Which of ``metric_types`` an active goal of the user follows: one indexed query.

    It runs after every metric write, almost always to find none, so the ORM compiles
    it once per shape (``compiled_rows``), not on every write."""
    if not metric_types:
        return []
    _, rows = compiled_rows(
        "goals.followed_types", _followed_types, user_id=user_id, metric_types=list(metric_types)
    )
    return [row[0] for row in rows]


def goal_followed_metric_types_sql(*, user_id: int, metric_types: list[str]) -> tuple[str, list]:
    """The SQL and parameters of ``goal_followed_metric_types``' query (one column,
    ``metric_type``), for a statement that asks it in the same round trip as its own
    work: a metric insert does (``metrics.services.metric_create``)."""
    return compiled_sql(
        "goals.followed_types", _followed_types, user_id=user_id, metric_types=list(metric_types)
    )


def goals_of(*, user_id: int, status: str | None = None) -> QuerySet[HealthGoal]:
    """A user's goals, newest first; served by the (user, status, -created_at) index."""
    queryset = HealthGoal.objects.filter(user_id=user_id)
    if status:
        queryset = queryset.filter(status=status)
    return queryset.order_by("-created_at", "-id")


def metric_current_value(
    *, user_id: int, metric_type: str, tz: str, now: datetime.datetime | None = None
) -> float | None:
    """The number a goal linked to ``metric_type`` follows, or None without data.

    * latest-value types (weight): the most recent sample, however old;
    * daily-sum types (steps, sleep, exercise): the average of the daily totals of the
      local days (in ``tz``) among the last 7, today included, that have data: a day
      without samples is a day the tracker was off, not a day of zero steps;
    * averaged types (heart rates, blood pressure (systolic), glucose, SpO2,
      temperature): the average of the samples of the last 7 local days.

    One aggregate query, rounded to the type's precision.
    """
    kind = get_metric_type(metric_type)
    if kind is None:
        return None
    samples = HealthMetric.objects.filter(user_id=user_id, metric_type=metric_type)
    if kind.daily_aggregate is DailyAggregate.LATEST:
        value = samples.order_by("-recorded_at", "-id").values_list("value", flat=True).first()
    else:
        _, _, start, end = local_day_window(tz=tz, days=FOLLOW_WINDOW_DAYS, now=now)
        window = samples.filter(recorded_at__gte=start, recorded_at__lt=end)
        if kind.daily_aggregate is DailyAggregate.SUM:
            per_day = Cast(Sum("value"), FloatField()) / NullIf(
                Count(local_date("recorded_at", tz), distinct=True), 0
            )
            value = window.aggregate(value=per_day)["value"]
        else:
            value = window.aggregate(value=Avg(F("value")))["value"]
    return None if value is None else round(value, kind.decimals)
