"""Reads of meals and water: lists and per-day totals, aggregated in the database."""

from __future__ import annotations

import datetime
import zoneinfo

from django.conf import settings
from django.db.models import Count, QuerySet, Sum
from django.utils import timezone

from healthtrack.cache import cached_for_user
from healthtrack.db import local_date, local_day_window
from nutrition.models import NUTRIENT_FIELDS, NutritionLog

SUMMARY_MAX_DAYS = 365


def nutrition_log_get(*, log_id: int) -> NutritionLog | None:
    return NutritionLog.objects.filter(pk=log_id).first()


def nutrition_logs_of(
    *,
    user_id: int,
    meal_type: str | None = None,
    since: datetime.datetime | None = None,
    until: datetime.datetime | None = None,
) -> QuerySet[NutritionLog]:
    """A user's logs, most recent first; ``since`` inclusive, ``until`` exclusive.
    Served by the (user, -logged_at) index."""
    queryset = NutritionLog.objects.filter(user_id=user_id)
    if meal_type:
        queryset = queryset.filter(meal_type=meal_type)
    if since is not None:
        queryset = queryset.filter(logged_at__gte=since)
    if until is not None:
        queryset = queryset.filter(logged_at__lt=until)
    return queryset.order_by("-logged_at", "-id")


def _round(value: float | None) -> float:
    return round(value or 0.0, 1)


def nutrition_daily_totals(*, user_id: int, tz: str, days: int, now: datetime.datetime | None = None) -> dict:
    """Totals per local day in ``tz`` over the last ``days`` days (today included).

    One GROUP BY query; every day of the window is present, oldest first, a day with
    no entries as zeros. A nutrient nobody logged that day counts as 0.
    """
    first_day, last_day, start, end = local_day_window(tz=tz, days=days, now=now)
    rows = (
        NutritionLog.objects.filter(user_id=user_id, logged_at__gte=start, logged_at__lt=end)
        .annotate(day=local_date("logged_at", tz))
        .values("day")
        .annotate(entries=Count("id"), **{name: Sum(name) for name in NUTRIENT_FIELDS})
        .order_by("day")
    )
    by_day = {row["day"]: row for row in rows}
    daily = []
    for offset in range(days):
        day = first_day + datetime.timedelta(days=offset)
        row = by_day.get(day, {})
        daily.append(
            {
                "date": day.isoformat(),
                **{name: _round(row.get(name)) for name in NUTRIENT_FIELDS},
                "entries": row.get("entries", 0),
            }
        )
    return {
        "user_id": user_id,
        "days": days,
        "timezone": tz,
        "start_date": first_day.isoformat(),
        "end_date": last_day.isoformat(),
        "daily": daily,
    }


def nutrition_summary(*, user_id: int, tz: str, days: int) -> dict:
    """``nutrition_daily_totals`` cached for REDIS_CACHE_EXPIRE_METRICS seconds under the
    user's data version (any write makes the next call fresh). Today's date and the zone
    are part of the key, so the window moves at local midnight and follows a change of
    time zone. Adds ``cached``: whether this answer came from the cache."""
    now = timezone.now()
    today = timezone.localtime(now, zoneinfo.ZoneInfo(tz)).date()
    summary, cached = cached_for_user(
        user_id,
        "nutrition-summary",
        (days, tz, today.isoformat()),
        settings.REDIS_CACHE_EXPIRE_METRICS,
        lambda: nutrition_daily_totals(user_id=user_id, tz=tz, days=days, now=now),
    )
    return {**summary, "cached": cached}
