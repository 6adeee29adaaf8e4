"""Database expressions shared by every app that groups data by a person's day."""

from __future__ import annotations

import datetime
import zoneinfo

from django.db.models import DateField, F, Func, Value
from django.db.models.functions import Coalesce
from django.utils import timezone


class LocalDate(Func):
    """The calendar date of a UTC timestamp in a time zone that may differ per row.

    ``LocalDate("recorded_at", F("user__profile__timezone"))`` lets one GROUP BY query
    bucket many users' samples into each user's own local days. PostgreSQL computes
    ``(ts AT TIME ZONE tz)::date``; SQLite uses the date function Django registers on
    every SQLite connection, which takes the zone name as an argument.
    """

    output_field = DateField()
    arity = 2

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler,
            connection,
            template="((%(expressions)s)::date)",
            arg_joiner=" AT TIME ZONE ",
            **extra_context,
        )

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler,
            connection,
            template="django_datetime_cast_date(%(expressions)s, 'UTC')",
            **extra_context,
        )


def user_timezone(path: str = "user__profile__timezone"):
    """The row owner's IANA time zone, UTC when unknown."""
    return Coalesce(F(path), Value("UTC"))


def local_date(timestamp_field: str, tz=None) -> LocalDate:
    """Local date of ``timestamp_field`` in the owner's zone, or in ``tz`` (a zone name)."""
    return LocalDate(F(timestamp_field), Value(tz) if isinstance(tz, str) else (tz or user_timezone()))


def zone_or_utc(name: str | None) -> datetime.tzinfo:
    """The IANA zone ``name``; UTC when it is empty or unknown."""
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def local_day_bounds(
    *, tz: str, first_day: datetime.date, last_day: datetime.date
) -> tuple[datetime.datetime, datetime.datetime]:
    """``[since, until)`` covering the local days ``first_day``..``last_day`` in ``tz``."""
    zone = zoneinfo.ZoneInfo(tz)
    since = datetime.datetime.combine(first_day, datetime.time.min, tzinfo=zone)
    until = datetime.datetime.combine(last_day + datetime.timedelta(days=1), datetime.time.min, tzinfo=zone)
    return since, until


def local_day_window(*, tz: str, days: int, now: datetime.datetime | None = None):
    """``(first_day, last_day, start, end)``: the ``days`` local days ending today in
    ``tz`` and the UTC instants bounding them (``start`` inclusive, ``end`` exclusive)."""
    last_day = timezone.localtime(now or timezone.now(), zoneinfo.ZoneInfo(tz)).date()
    first_day = last_day - datetime.timedelta(days=days - 1)
    start, end = local_day_bounds(tz=tz, first_day=first_day, last_day=last_day)
    return first_day, last_day, start.astimezone(datetime.UTC), end.astimezone(datetime.UTC)
