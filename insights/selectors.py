"""Reads for the insights engine and the insights API.

``insight_features_for_users`` builds the engine's features for a whole batch of users
with a fixed number of aggregate queries (profiles, active goals, metric day
aggregates, latest-of-day values, nutrition day totals), whatever the batch size and
however much data each person has: every user's samples are bucketed into their own
local days by one GROUP BY (``healthtrack.db.local_date``).
"""

from __future__ import annotations

import datetime
import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from django.db import connection
from django.db.models import Avg, Count, Exists, F, Max, Min, OuterRef, Q, QuerySet, Sum, Window
from django.db.models.functions import Mod, RowNumber
from django.utils import timezone

from goals.models import GoalStatus, HealthGoal
from healthtrack.db import compiled_rows, local_date, zone_or_utc
from insights.engine import DayValue, GoalFact, NutritionDay, ProfileFacts, UserFeatures
from insights.engine.rules import GOAL_TYPE_METRIC
from insights.models import HealthInsight
from metrics.models import HealthMetric
from metrics.registry import METRIC_TYPES, DailyAggregate, normalize_unit
from nutrition.models import NutritionLog
from users.models import Profile, User

logger = logging.getLogger("healthtrack.insights")

# Metric types some rule reads; goals add theirs per batch.
ENGINE_METRIC_TYPES = frozenset(
    {"steps", "sleep", "resting_heart_rate", "weight", "blood_pressure", "blood_glucose", "exercise"}
)
_LB_UNITS = {"lb", "lbs"}
_WATER_UNITS_TO_ML = {
    "ml": 1.0, "l": 1000.0, "liter": 1000.0, "litre": 1000.0, "oz": 29.5735, "fl oz": 29.5735,
}  # fmt: skip


class _GoalRow(NamedTuple):
    user_id: int
    id: int
    goal_type: str
    metric_type: str
    priority: str
    start_value: float | None
    current_value: float | None
    target_value: float | None
    unit: str
    target_date: datetime.date | None
    created_at: datetime.datetime | None
    title: str


@dataclass
class FeatureBatch:
    """Features of each user found, and the users whose data could not be read (user id
    → reason), so one person's bad data never stops the others."""

    features: dict[int, UserFeatures] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)


def _age_on(day: datetime.date, born: datetime.date | None) -> int | None:
    if born is None or born > day:
        return None
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def _canonical_goal_value(value: float | None, unit: str, metric: str) -> float | None:
    """A goal value in the canonical unit of what it follows (goals may be kept in lb,
    minutes, litres ...); unchanged when the unit is unknown or already canonical."""
    if value is None or not unit:
        return value
    if metric == "water":
        return value * _WATER_UNITS_TO_ML.get(unit.strip().lower(), 1.0)
    metric_type = METRIC_TYPES.get(metric)
    if metric_type is None:
        return value
    try:
        return metric_type.to_canonical(value, normalize_unit(unit, metric_type))
    except KeyError:
        return value


def _window_bounds(now: datetime.datetime, days: int) -> tuple[datetime.datetime, datetime.datetime]:
    """A UTC range wide enough for every zone's last ``days`` local days; the exact
    local window is applied to the day buckets afterwards."""
    return now - datetime.timedelta(days=days + 1), now + datetime.timedelta(days=1)


_METRIC_DAY_COLUMNS = (
    "user_id", "metric_type", "day", "total", "average", "low", "high",
    "secondary", "secondary_high", "samples",
)  # fmt: skip


def _metric_samples(user_ids: Sequence[int], types: Iterable[str], since, until) -> QuerySet[HealthMetric]:
    """The samples of ``types`` in the time range, leaving out non-finite values (NaN
    and infinities cannot come through the API, but must not poison an average)."""
    finite = Q(value__gt=-math.inf, value__lt=math.inf) & (
        Q(secondary_value__isnull=True) | Q(secondary_value__gt=-math.inf, secondary_value__lt=math.inf)
    )
    return HealthMetric.objects.filter(
        finite,
        user_id__in=user_ids,
        metric_type__in=list(types),
        recorded_at__gte=since,
        recorded_at__lt=until,
    )


def _metric_day_rows(user_ids: Sequence[int], types: Iterable[str], since, until):
    """One row per (user, type, local day) of the types aggregated by sum or average."""
    return (
        _metric_samples(user_ids, types, since, until)
        .annotate(day=local_date("recorded_at"))
        .values("user_id", "metric_type", "day")
        .annotate(
            total=Sum("value"),
            average=Avg("value"),
            low=Min("value"),
            high=Max("value"),
            secondary=Avg("secondary_value"),
            secondary_high=Max("secondary_value"),
            samples=Count("id"),
        )
        .order_by()
        .values_list(*_METRIC_DAY_COLUMNS)
    )


def _metric_latest_rows(user_ids: Sequence[int], types: Iterable[str], since, until):
    """The latest sample of each (user, type, local day) for types kept as 'latest'."""
    day = local_date("recorded_at")
    return (
        _metric_samples(user_ids, types, since, until)
        .annotate(
            day=day,
            position=Window(
                RowNumber(),
                partition_by=[F("user_id"), F("metric_type"), day],
                order_by=[F("recorded_at").desc(), F("id").desc()],
            ),
        )
        .filter(position=1)
        .order_by()
        .values_list("user_id", "metric_type", "day", "value", "secondary_value")
    )


# Nutrient columns are non-negative (a check constraint): only +inf and NaN (which sorts
# above +inf on PostgreSQL and is stored as NULL by SQLite) can be non-finite.
_NON_FINITE_NUTRIENTS = (
    Q(calories__gte=math.inf)
    | Q(protein_g__gte=math.inf)
    | Q(carbs_g__gte=math.inf)
    | Q(fat_g__gte=math.inf)
    | Q(water_ml__gte=math.inf)
)


def _nutrition_day_rows(user_ids: Sequence[int], since, until):
    return (
        NutritionLog.objects.filter(user_id__in=user_ids, logged_at__gte=since, logged_at__lt=until)
        .exclude(_NON_FINITE_NUTRIENTS)
        .annotate(day=local_date("logged_at"))
        .values("user_id", "day")
        .annotate(
            calories=Sum("calories"),
            protein=Sum("protein_g"),
            carbs=Sum("carbs_g"),
            fat=Sum("fat_g"),
            water=Sum("water_ml"),
        )
        .order_by()
        .values_list("user_id", "day", "calories", "protein", "carbs", "fat", "water")
    )


def _people_rows(user_ids: Sequence[int]):
    """Active people's id, time zone, encrypted date of birth, gender and height."""
    return User.objects.filter(pk__in=user_ids, is_active=True).values_list(
        "id", "profile__timezone", "profile__date_of_birth", "profile__gender", "profile__height_cm"
    )


def _raw_rows(build, **arguments) -> list[tuple]:
    """The database's own row tuples of ``build(**arguments)`` (``compiled_rows``): no
    decryption, no per-row conversion layer."""
    return compiled_rows(f"insights.{build.__name__}", build, **arguments)[1]


def _rows(build, *, day_column: int = 2, **arguments) -> list[tuple]:
    """Run an aggregate query (``_raw_rows``) and return the database's own row tuples.

    The ORM builds the SQL (portable, per-user time zones and all); running it on the
    cursor skips the per-row conversion layer, which on a batch of 500 people's month
    is most of the cost. Only dates need converting, on SQLite, which returns text.
    """
    rows = _raw_rows(build, **arguments)
    if rows and isinstance(rows[0][day_column], str):
        parse = datetime.date.fromisoformat
        rows = [(*row[:day_column], parse(row[day_column]), *row[day_column + 1 :]) for row in rows]
    return rows


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def insight_features_for_users(
    *, user_ids: Sequence[int], days: int, now: datetime.datetime | None = None
) -> FeatureBatch:
    """The engine's features for every active user in ``user_ids``, over the ``days``
    local days ending today in each user's own time zone.

    Five queries, whatever the number of users or samples: profiles, active goals,
    metric day aggregates (sum/avg/min/max per the registry), latest-of-day values
    (weight), nutrition day totals. Unknown or inactive ids are simply absent.
    """
    now = now or timezone.now()
    batch = FeatureBatch()
    ids = list(dict.fromkeys(user_ids))
    if not ids:
        return batch
    since, until = _window_bounds(now, days)

    # Read raw: the date of birth is decrypted per person below, so one value no key can
    # decrypt is that person's problem, not the batch's.
    people = _raw_rows(_people_rows, user_ids=ids)
    if not people:
        return batch
    found = [row[0] for row in people]

    goals_by_user: dict[int, list] = defaultdict(list)
    goal_metrics: set[str] = set()
    for row in HealthGoal.objects.filter(user_id__in=found, status=GoalStatus.ACTIVE).values_list(
        *_GoalRow._fields
    ):
        goal = _GoalRow(*row)
        goals_by_user[goal.user_id].append(goal)
        metric = goal.metric_type or GOAL_TYPE_METRIC.get(goal.goal_type, "")
        if metric in METRIC_TYPES:
            goal_metrics.add(metric)

    wanted = ENGINE_METRIC_TYPES | goal_metrics
    latest_types = {code for code in wanted if METRIC_TYPES[code].daily_aggregate is DailyAggregate.LATEST}
    summed_types = {code for code in wanted if METRIC_TYPES[code].daily_aggregate is DailyAggregate.SUM}

    # Each person's window: the local days [start, today] in their own zone. The
    # queries use a UTC range wide enough for every zone; days outside are dropped here.
    windows: dict[int, tuple[datetime.date, datetime.date]] = {}
    for user_id, zone_name, *_ in people:
        today = now.astimezone(zone_or_utc(zone_name)).date()
        windows[user_id] = (today - datetime.timedelta(days=days - 1), today)

    # Hot loops (a batch is ~10^5 rows): plain tuples, no per-row checks beyond the window
    # (the queries already leave out non-finite values).
    metrics_by_user: dict[int, dict[str, dict[datetime.date, DayValue]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    for user_id, code, day, total, average, low, high, secondary, secondary_high, samples in _rows(
        _metric_day_rows, user_ids=found, types=sorted(wanted - latest_types), since=since, until=until
    ):
        start, today = windows[user_id]
        if start <= day <= today:
            metrics_by_user[user_id][code][day] = DayValue(
                total if code in summed_types else average, low, high, secondary, secondary_high, samples
            )
    if latest_types:
        for user_id, code, day, value, secondary in _rows(
            _metric_latest_rows, user_ids=found, types=sorted(latest_types), since=since, until=until
        ):
            start, today = windows[user_id]
            if start <= day <= today:
                metrics_by_user[user_id][code][day] = DayValue(value, None, None, secondary)

    nutrition_by_user: dict[int, dict[datetime.date, NutritionDay]] = defaultdict(dict)
    for user_id, day, *totals in _rows(
        _nutrition_day_rows, day_column=1, user_ids=found, since=since, until=until
    ):
        start, today = windows[user_id]
        if start <= day <= today:
            nutrition_by_user[user_id][day] = NutritionDay(*totals)

    decrypt_birth_date = Profile._meta.get_field("date_of_birth").from_db_value
    for user_id, _, encrypted_birth_date, gender, height in people:
        try:
            batch.features[user_id] = _user_features(
                user_id=user_id,
                today=windows[user_id][1],
                days=days,
                born=decrypt_birth_date(encrypted_birth_date, None, connection),
                gender=gender,
                height=height,
                goals=goals_by_user.get(user_id, ()),
                metrics=metrics_by_user.get(user_id, {}),
                nutrition=nutrition_by_user.get(user_id, {}),
            )
        except Exception as error:  # one person's bad data must not stop the batch
            logger.exception("Could not build insight features for user %s", user_id)
            batch.errors[user_id] = f"{error.__class__.__name__}: {error}"
    return batch


def _user_features(*, user_id, today, days, born, gender, height, goals, metrics, nutrition):
    goal_facts = []
    weight_unit = "kg"
    for goal in goals:
        metric = goal.metric_type or GOAL_TYPE_METRIC.get(goal.goal_type, "")
        unit = goal.unit or ""
        if metric == "weight" and unit.strip().lower() in _LB_UNITS:
            weight_unit = "lb"
        target_value = _canonical_goal_value(goal.target_value, unit, metric)
        if target_value is None or not math.isfinite(target_value):
            continue
        goal_facts.append(
            GoalFact(
                id=goal.id,
                goal_type=goal.goal_type,
                metric_type=metric,
                priority=goal.priority,
                target_value=target_value,
                start_value=_finite_or_none(_canonical_goal_value(goal.start_value, unit, metric)),
                current_value=_finite_or_none(_canonical_goal_value(goal.current_value, unit, metric)),
                target_date=goal.target_date,
                created_on=goal.created_at.date() if goal.created_at else None,
                title=goal.title or "",
            )
        )
    return UserFeatures(
        user_id=user_id,
        today=today,
        window_days=days,
        profile=ProfileFacts(
            age_years=_age_on(today, born),
            sex=gender if gender in ("male", "female") else None,
            height_cm=height if height and math.isfinite(height) and height > 0 else None,
            weight_unit=weight_unit,
        ),
        metrics=metrics,
        nutrition=nutrition,
        goals=tuple(sorted(goal_facts, key=lambda goal: goal.id)),
    )


# --- Who compute_insights runs for --------------------------------------------------


def insight_compute_user_ids(
    *,
    user_ids: Sequence[int] | None = None,
    since_active_days: int | None = None,
    shard: tuple[int, int] | None = None,
    now: datetime.datetime | None = None,
) -> list[int]:
    """Ids of the people compute_insights covers, ascending: active, non-staff accounts
    (staff are operators, not patients; name them with ``user_ids`` to include them),
    only ``user_ids`` when given, only those with data recorded in the last
    ``since_active_days`` days when given, and only ``id % N == K`` for ``shard=(K, N)``.
    One query."""
    users = User.objects.filter(is_active=True)
    users = users.filter(pk__in=list(user_ids)) if user_ids else users.filter(is_staff=False)
    if since_active_days is not None:
        cutoff = (now or timezone.now()) - datetime.timedelta(days=since_active_days)
        users = users.filter(
            Exists(HealthMetric.objects.filter(user_id=OuterRef("pk"), recorded_at__gte=cutoff))
            | Exists(NutritionLog.objects.filter(user_id=OuterRef("pk"), logged_at__gte=cutoff))
        )
    if shard is not None:
        index, count = shard
        users = users.annotate(shard=Mod(F("id"), count)).filter(shard=index)
    return list(users.order_by("pk").values_list("pk", flat=True))


# --- The insights API ---------------------------------------------------------------


def user_exists(*, user_id: int) -> bool:
    return User.objects.filter(pk=user_id).exists()


def insight_get(*, insight_id: int) -> HealthInsight | None:
    return HealthInsight.objects.filter(pk=insight_id).first()


def insight_list_for_user(*, user_id: int, is_read: bool | None = None) -> QuerySet[HealthInsight]:
    """A person's insights, newest first (``created_at``, then id)."""
    insights = HealthInsight.objects.filter(user_id=user_id)
    if is_read is not None:
        insights = insights.filter(is_read=is_read)
    return insights.order_by("-created_at", "-id")


def insight_engine_rows(*, user_ids: Sequence[int], days: Iterable[datetime.date]) -> QuerySet[HealthInsight]:
    """Engine-made insights (no author) of ``user_ids`` on any of ``days``."""
    return HealthInsight.objects.filter(
        Q(created_by__isnull=True), user_id__in=list(user_ids), insight_date__in=list(set(days))
    )
