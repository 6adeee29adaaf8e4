"""Database expressions shared by every app that groups data by a person's day, and ORM
queries compiled once per shape (``compiled_sql``)."""

from __future__ import annotations

import datetime
import zoneinfo
from collections.abc import Callable
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import DateField, F, Func, QuerySet, Value
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


# --- ORM queries compiled once per shape ----------------------------------------------

_compiled_queries: dict[tuple, tuple[str, list, list[tuple[str, int | None, list[int]]]] | None] = {}
_SCALAR_PARAMETERS = (int, str, datetime.datetime, datetime.date)
# Longer lists (batch jobs' id lists, a different length each batch) are compiled by
# the ORM every time: their shapes would rarely repeat.
COMPILED_LIST_MAX = 50


def _marker(value: Any, number: int) -> Any:
    """A stand-in for ``value`` of the same type that no real query would use."""
    if isinstance(value, datetime.datetime):
        start = datetime.datetime(1000, 1, 1, tzinfo=datetime.UTC if value.tzinfo else None)
        return start + datetime.timedelta(seconds=number)
    if isinstance(value, datetime.date):
        return datetime.date(1000, 1, 1) + datetime.timedelta(days=number)
    if isinstance(value, int):
        return -(10**15) - number
    return f"\x1fparameter {number}\x1f"


def _is_parameter(value: Any) -> bool:
    return isinstance(value, _SCALAR_PARAMETERS) and not isinstance(value, bool)


def compiled_sql(name: str, build: Callable[..., QuerySet], /, **arguments: Any) -> tuple[str, list]:
    """``build(**arguments).query.sql_with_params()``, with the ORM's work done once per
    shape of the arguments.

    Building and compiling a queryset costs more CPU than running a small aggregate:
    on a cache miss of the recommendations or the summary it was most of the request.
    The first call of a shape (``name`` + each argument's type, list length, or, for
    ``None``/bools/other values, the value itself) builds the query with stand-in
    values, finds where each lands in the parameters and keeps the SQL; later calls
    only put their values in those places. ``build`` must give the same SQL for any
    values of one shape (values may only ever become parameters). That is checked on
    the first call against the ORM's own compilation of the real values; a shape that
    fails the check (e.g. SQLite, which adapts datetimes to text) is always compiled by
    the ORM.
    """
    key = _shape_key(name, arguments)
    template = None if key is None else _compiled_queries.get(key, _UNCOMPILED)
    if template is _UNCOMPILED:
        template = _compiled_queries[key] = _compile_template(build, arguments)
    if template is None:
        sql, params = build(**arguments).query.sql_with_params()
        return sql, list(params)
    sql, params, places = template
    return sql, _filled(params, places, arguments)


def compiled_rows(
    name: str, build: Callable[..., QuerySet], /, **arguments: Any
) -> tuple[list[str], list[tuple]]:
    """Run ``compiled_sql(name, build, **arguments)`` on the cursor: the column names and
    the database's own row tuples (no field converters, no per-row conversion layer)."""
    sql, params = compiled_sql(name, build, **arguments)
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(sql, params)
        return [column[0] for column in cursor.description], cursor.fetchall()


def _shape_key(name: str, arguments: dict[str, Any]) -> tuple | None:
    """What decides the SQL of ``arguments``; None for a shape not worth keeping."""
    shape: list = [name, connections[DEFAULT_DB_ALIAS].vendor]
    for argument, value in arguments.items():
        if isinstance(value, list) and len(value) > COMPILED_LIST_MAX:
            return None  # a batch job's id list: a shape per length would pile up
        if isinstance(value, list) and all(_is_parameter(item) for item in value):
            shape.append((argument, "list", len(value), frozenset(map(type, value))))
        elif _is_parameter(value):
            # Naive and aware datetimes are prepared differently by the ORM.
            aware = isinstance(value, datetime.datetime) and value.tzinfo is not None
            shape.append((argument, type(value), aware))
        else:
            shape.append((argument, "constant", value))
    key = tuple(shape)
    try:
        hash(key)
    except TypeError:  # an unhashable constant
        return None
    return key


def _filled(params: list, places: list[tuple[str, int | None, list[int]]], arguments: dict[str, Any]) -> list:
    """``params`` with each argument's value put in its places."""
    params = list(params)
    for argument, index, positions in places:
        value = arguments[argument] if index is None else arguments[argument][index]
        for position in positions:
            params[position] = value
    return params


_UNCOMPILED = object()


def _compile_template(build, arguments: dict[str, Any]):
    stand_ins: dict[str, Any] = {}
    markers: list[tuple[str, int | None, Any]] = []
    for argument, value in arguments.items():  # at most a few hundred stand-ins
        if isinstance(value, list) and all(_is_parameter(item) for item in value):
            stand_ins[argument] = []
            for index, item in enumerate(value):
                marker = _marker(item, len(markers))
                stand_ins[argument].append(marker)
                markers.append((argument, index, marker))
        elif _is_parameter(value):
            marker = _marker(value, len(markers))
            stand_ins[argument] = marker
            markers.append((argument, None, marker))
        else:
            stand_ins[argument] = value
    try:
        expected = build(**arguments).query.sql_with_params()
    except EmptyResultSet:
        return None
    try:
        sql, params = build(**stand_ins).query.sql_with_params()
    except Exception:  # a value used as more than a parameter (a field name...)
        return None
    params = list(params)
    places = []
    for argument, index, marker in markers:
        positions = [i for i, param in enumerate(params) if type(param) is type(marker) and param == marker]
        if not positions:
            return None  # the value went into the SQL text, or was transformed
        places.append((argument, index, positions))
    if (sql, _filled(params, places, arguments)) != (expected[0], list(expected[1])):
        return None
    return sql, params, places
