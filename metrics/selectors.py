"""Reads of health metrics: lists, stored sync ids, and per-local-day summaries.

Summaries are computed by the database: one GROUP BY over the user's samples bucketed
into local days, one window query for each day's latest sample; Python only arranges
the grouped rows (never one row per sample).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connections, router
from django.db.models import Avg, Count, F, Max, Min, Q, QuerySet, Sum, Window
from django.db.models.functions import RowNumber

from healthtrack.cache import cached_for_user
from healthtrack.db import compiled_rows, compiled_sql, local_date, local_day_bounds
from healthtrack.postgresql.base import prepared_cursor
from healthtrack.renderers import dumps
from metrics.models import HealthMetric
from metrics.registry import METRIC_TYPES, DailyAggregate
from metrics.serializers import METRIC_FIELDS, iso_datetime, metric_row_as_dict

SUMMARY_DECIMALS = 2


# --- Objects and lists -------------------------------------------------------------------


def metric_get(*, metric_id: int) -> HealthMetric | None:
    return HealthMetric.objects.filter(pk=metric_id).first()


def metric_list(
    *,
    user_id: int,
    metric_type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet:
    """A user's samples as ``.values()`` rows, newest first; ``since``/``until`` inclusive."""
    queryset = HealthMetric.objects.filter(user_id=user_id)
    if metric_type:
        queryset = queryset.filter(metric_type=metric_type)
    if since is not None:
        queryset = queryset.filter(recorded_at__gte=since)
    if until is not None:
        queryset = queryset.filter(recorded_at__lte=until)
    return queryset.order_by("-recorded_at", "-id").values(*METRIC_FIELDS)


class MetricRows:
    """A user's samples newest first, as the API shows them (``metric_row_as_dict``), for
    the paginator: ``count()`` and slices.

    On PostgreSQL each is one statement compiled once per combination of filters, with
    the timestamps written out by the database in ``iso_datetime``'s form: a page of 50
    costs two small queries and no ORM compilation or timestamp parsing, which were
    most of the list route's CPU. Elsewhere the ORM query of ``metric_list`` does it.
    """

    def __init__(
        self,
        *,
        user_id: int,
        metric_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> None:
        self.filters = (user_id, metric_type, since, until)
        self.connection = connections[router.db_for_read(HealthMetric)]

    def _where(self) -> tuple[tuple[bool, ...], list[Any]]:
        user_id, metric_type, since, until = self.filters
        present = (metric_type is not None, since is not None, until is not None)
        params = [user_id] + [value for value in (metric_type, since, until) if value is not None]
        return present, params

    def count(self) -> int:
        if self.connection.vendor != "postgresql":
            return self._queryset().count()
        present, params = self._where()
        with self.connection.cursor() as cursor:
            cursor.execute(_metric_rows_sql(self.connection, present, count=True), params)
            return cursor.fetchone()[0]

    def __getitem__(self, page: slice) -> list[dict[str, Any]]:
        if self.connection.vendor != "postgresql":
            return [metric_row_as_dict(row) for row in self._queryset()[page]]
        present, params = self._where()
        with self.connection.cursor() as cursor:
            cursor.execute(
                _metric_rows_sql(self.connection, present, count=False),
                [*params, page.stop - page.start, page.start],
            )
            return [dict(zip(METRIC_FIELDS, row, strict=True)) for row in cursor.fetchall()]

    def count_and_page(self, *, offset: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
        """The number of rows and the ``limit`` rows after ``offset``: on PostgreSQL one
        statement (the count and the page in one round trip), elsewhere two queries."""
        if self.connection.vendor != "postgresql":
            return self.count(), self[offset : offset + limit]
        present, params = self._where()
        # Prepared: planning it cost PostgreSQL more than running it.
        with prepared_cursor(self.connection) as cursor:
            cursor.execute(
                _metric_rows_sql(self.connection, present, count=None), [*params, *params, limit, offset]
            )
            found = cursor.fetchall()
        # One row per sample on the page, each led by the count; a single row of NULLs
        # after the count when the page is empty.
        page = [dict(zip(METRIC_FIELDS, row[1:], strict=True)) for row in found if row[1] is not None]
        return found[0][0], page

    def _queryset(self) -> QuerySet:
        user_id, metric_type, since, until = self.filters
        return metric_list(user_id=user_id, metric_type=metric_type, since=since, until=until)


def _iso_text_sql(column: str) -> str:
    """SQL writing the timestamptz ``column`` as ``iso_datetime`` does: UTC, ``Z``, and
    the microseconds only when there are any."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (
        f"to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN extract(microseconds FROM {utc})"
        f"::bigint %% 1000000 = 0 THEN 'Z' ELSE to_char({utc}, '.US') || 'Z' END"
    )


_metric_rows_statements: dict[tuple[tuple[bool, ...], bool | None], str] = {}
_FILTER_CONDITIONS = (("metric_type", "="), ("recorded_at", ">="), ("recorded_at", "<="))


def _metric_rows_sql(connection, present: tuple[bool, ...], *, count: bool | None) -> str:
    """The PostgreSQL page (``count=False``), count (``True``) or count-and-page (``None``)
    statement for the filters ``present`` (type, since, until), built once."""
    sql = _metric_rows_statements.get((present, count))
    if sql is None:
        sql = _metric_rows_statements[present, count] = _metric_rows_build(connection, present, count=count)
    return sql


def _metric_rows_build(connection, present: tuple[bool, ...], *, count: bool | None) -> str:
    meta = HealthMetric._meta
    quote = connection.ops.quote_name

    def column(name: str) -> str:
        return quote(meta.get_field(name).column)

    conditions = [f"{column('user')} = %s"]
    for (name, operator), given in zip(_FILTER_CONDITIONS, present, strict=True):
        if given:
            conditions.append(f"{column(name)} {operator} %s")
    where = " AND ".join(conditions)
    table = quote(meta.db_table)
    if count:
        return f"SELECT COUNT(*) FROM {table} WHERE {where}"  # noqa: S608
    expressions = [
        _iso_text_sql(column(name)) if name in ("recorded_at", "created_at") else column(name)
        for name in METRIC_FIELDS
    ]
    selected = ", ".join(expressions)
    order = f"{column('recorded_at')} DESC, {column('id')} DESC"
    if count is False:
        return f"SELECT {selected} FROM {table} WHERE {where} ORDER BY {order} LIMIT %s OFFSET %s"  # noqa: S608
    # The count once, joined to the page so that an empty page still brings it back (as
    # one row of NULLs); the page is sorted again outside, as a join keeps no order.
    aliases = [f"field_{number}" for number in range(len(METRIC_FIELDS))]
    inner = ", ".join(
        f"{expression} AS {alias}" for expression, alias in zip(expressions, aliases, strict=True)
    )
    return (
        f"SELECT counted.total, {', '.join(f'page.{alias}' for alias in aliases)} "  # noqa: S608
        f"FROM (SELECT COUNT(*) AS total FROM {table} WHERE {where}) counted "
        f"LEFT JOIN LATERAL (SELECT {inner}, {column('recorded_at')} AS sort_at FROM {table} "
        f"WHERE {where} ORDER BY {order} LIMIT %s OFFSET %s) page ON TRUE "
        f"ORDER BY page.sort_at DESC, page.field_{METRIC_FIELDS.index('id')} DESC"
    )


def metric_find_synced(*, user_id: int, source: str, external_id: str) -> HealthMetric | None:
    """The stored sample with this sync identity, if any."""
    return HealthMetric.objects.filter(user_id=user_id, source=source, external_id=external_id).first()


def metric_stored_sync_keys(*, user_id: int, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of ``keys`` ((source, external_id) pairs) the user already has: one query."""
    keys = list(keys)
    if not keys:
        return set()
    connection = connections[router.db_for_read(HealthMetric)]
    if connection.vendor == "postgresql":
        # Two array parameters instead of an IN list of a thousand; identifiers come
        # from the model, every value is a parameter.
        meta = HealthMetric._meta
        quote = connection.ops.quote_name
        source, external_id, user = (
            quote(meta.get_field(name).column) for name in ("source", "external_id", "user")
        )
        sql = (
            f"SELECT {source}, {external_id} FROM {quote(meta.db_table)} WHERE {user} = %s "  # noqa: S608
            f"AND ({source}, {external_id}) IN (SELECT * FROM unnest(%s::text[], %s::text[]))"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [user_id, [key[0] for key in keys], [key[1] for key in keys]])
            return set(cursor.fetchall())
    by_source: dict[str, list[str]] = {}
    for source, external_id in keys:
        by_source.setdefault(source, []).append(external_id)
    match = Q()
    for source, external_ids in by_source.items():
        match |= Q(source=source, external_id__in=external_ids)
    return set(
        HealthMetric.objects.filter(match, user_id=user_id).values_list("source", "external_id").order_by()
    )


def metric_synced_rows(
    *, user_id: int, keys: Iterable[tuple[str, str]], fields: Sequence[str]
) -> dict[tuple[str, str], dict[str, Any]]:
    """The stored samples with these sync ids ((source, external_id) pairs), as
    ``{key: {"id", *fields}}``: one query."""
    by_source: dict[str, list[str]] = {}
    for source, external_id in keys:
        by_source.setdefault(source, []).append(external_id)
    if not by_source:
        return {}
    match = Q()
    for source, external_ids in by_source.items():
        match |= Q(source=source, external_id__in=external_ids)
    rows = HealthMetric.objects.filter(match, user_id=user_id).values("id", "source", "external_id", *fields)
    return {(row.pop("source"), row.pop("external_id")): row for row in rows.order_by()}


# --- Owners ------------------------------------------------------------------------------


# --- Local days --------------------------------------------------------------------------


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), SUMMARY_DECIMALS)


def _window_queryset(*, user_id: int, metric_types: Sequence[str], since: datetime, until: datetime):
    return HealthMetric.objects.filter(
        user_id=user_id, metric_type__in=list(metric_types), recorded_at__gte=since, recorded_at__lt=until
    )


def _daily_groups(*, user_id: int, metric_types: Sequence[str], since: datetime, until: datetime, tz: str):
    """GROUP BY (type, local day): the day's count, sum, min, max, and diastolic stats."""
    return (
        _window_queryset(user_id=user_id, metric_types=metric_types, since=since, until=until)
        .annotate(day=local_date("recorded_at", tz))
        .values("metric_type", "day")
        .annotate(
            day_count=Count("id"),
            day_sum=Sum("value"),
            day_avg=Avg("value"),
            day_min=Min("value"),
            day_max=Max("value"),
            sec_count=Count("secondary_value"),
            sec_sum=Sum("secondary_value"),
            sec_avg=Avg("secondary_value"),
            sec_min=Min("secondary_value"),
            sec_max=Max("secondary_value"),
        )
        .order_by()
    )


def _daily_series_rows(*, user_id: int, metric_types: list[str], since: datetime, until: datetime, tz: str):
    """Each (type, local day)'s aggregates, on the row of the day's latest sample."""
    partition = [F("metric_type"), F("day")]

    def per_day(expression):
        return Window(expression, partition_by=partition)

    return (
        _window_queryset(user_id=user_id, metric_types=metric_types, since=since, until=until)
        .annotate(day=local_date("recorded_at", tz))
        .annotate(
            day_count=per_day(Count("id")),
            day_sum=per_day(Sum("value")),
            day_avg=per_day(Avg("value")),
            day_min=per_day(Min("value")),
            day_max=per_day(Max("value")),
            sec_avg=per_day(Avg("secondary_value")),
            sec_min=per_day(Min("secondary_value")),
            sec_max=per_day(Max("secondary_value")),
            position=Window(
                RowNumber(), partition_by=partition, order_by=[F("recorded_at").desc(), F("id").desc()]
            ),
        )
        .filter(position=1)
        .order_by("metric_type", "day")
        .values(
            "metric_type",
            "day",
            "value",
            "secondary_value",
            "recorded_at",
            "day_count",
            "day_sum",
            "day_avg",
            "day_min",
            "day_max",
            "sec_avg",
            "sec_min",
            "sec_max",
        )
    )


def _daily_series_dicts(arguments: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of ``_daily_series_rows(**arguments)`` as dicts. On PostgreSQL its SQL is
    compiled once per shape and run on the cursor: PostgreSQL's own types already are
    the ones the ORM gives (dates, aware datetimes, floats)."""
    if connections[router.db_for_read(HealthMetric)].vendor != "postgresql":
        return list(_daily_series_rows(**arguments))
    names, rows = compiled_rows("metrics.daily_series", _daily_series_rows, **arguments)
    return [dict(zip(names, row, strict=True)) for row in rows]


def metric_daily_series(
    *, user_id: int, metric_types: Sequence[str], since: datetime, until: datetime, tz: str
) -> dict[str, list[dict[str, Any]]]:
    """Per metric type, one point per local day (in ``tz``) with data in ``[since, until)``.

    Each point: ``date`` (ISO), ``value`` (the day as one number, by the type's daily
    aggregate: sum, avg or the day's latest sample), ``avg``, ``min``, ``max``, ``sum``,
    ``count``, ``secondary`` ({avg, min, max} of diastolic for blood pressure, else
    None) and ``latest`` ({value, secondary_value, recorded_at} of the day's last
    sample). Oldest day first. One query: per-day aggregates as window functions over
    (type, local day), keeping each day's latest row.
    """
    if not metric_types:
        return {}
    arguments = {
        "user_id": user_id,
        "metric_types": list(metric_types),
        "since": since,
        "until": until,
        "tz": tz,
    }
    rows = _daily_series_dicts(arguments)
    series: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        metric_type = METRIC_TYPES[row["metric_type"]]
        daily_value = {
            DailyAggregate.SUM: row["day_sum"],
            DailyAggregate.AVG: row["day_avg"],
            DailyAggregate.LATEST: row["value"],
        }[metric_type.daily_aggregate]
        day = row["day"]
        series.setdefault(metric_type.code, []).append(
            {
                "date": day.isoformat() if isinstance(day, date) else str(day),
                "value": _round(daily_value),
                "avg": _round(row["day_avg"]),
                "min": _round(row["day_min"]),
                "max": _round(row["day_max"]),
                "sum": _round(row["day_sum"]),
                "count": row["day_count"],
                "secondary": (
                    {
                        "avg": _round(row["sec_avg"]),
                        "min": _round(row["sec_min"]),
                        "max": _round(row["sec_max"]),
                    }
                    if metric_type.requires_secondary and row["sec_avg"] is not None
                    else None
                ),
                "latest": {
                    "value": _round(row["value"]),
                    "secondary_value": _round(row["secondary_value"]),
                    "recorded_at": iso_datetime(row["recorded_at"]),
                },
            }
        )
    return series


def metric_totals(
    *, user_id: int, metric_types: Sequence[str], since: datetime, until: datetime, tz: str
) -> dict[str, dict[str, Any]]:
    """Per metric type over ``[since, until)``: sample count and stats, days with data,
    stats of the daily totals, and diastolic stats. One query.

    The ORM cannot aggregate over an aggregate, so the (type, local day) GROUP BY that
    Django compiles is wrapped in an outer GROUP BY type: the same SQL on PostgreSQL
    and SQLite, with Django's own parameters.
    """
    if not metric_types:
        return {}
    connection = connections[router.db_for_read(HealthMetric)]
    inner_sql, params = compiled_sql(
        "metrics.daily_groups",
        _daily_groups,
        user_id=user_id,
        metric_types=list(metric_types),
        since=since,
        until=until,
        tz=tz,
    )
    # inner_sql is Django's own compiled SQL; every value is in params.
    outer_select = (
        "SELECT daily.metric_type, SUM(daily.day_count), COUNT(*), SUM(daily.day_sum), "
        "MIN(daily.day_min), MAX(daily.day_max), AVG(daily.day_sum), MIN(daily.day_sum), "
        "MAX(daily.day_sum), SUM(daily.sec_count), SUM(daily.sec_sum), MIN(daily.sec_min), "
        "MAX(daily.sec_max)"
    )
    sql = f"{outer_select} FROM ({inner_sql}) daily GROUP BY daily.metric_type"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    totals: dict[str, dict[str, Any]] = {}
    for (
        code,
        count,
        days_with_data,
        value_sum,
        value_min,
        value_max,
        daily_avg,
        daily_min,
        daily_max,
        sec_count,
        sec_sum,
        sec_min,
        sec_max,
    ) in rows:
        metric_type = METRIC_TYPES[code]
        # PostgreSQL sums integer counts as numeric (Decimal).
        count, sec_count = int(count), int(sec_count or 0)
        if metric_type.daily_aggregate is DailyAggregate.SUM:
            stats = (daily_avg, daily_min, daily_max)
        else:
            stats = (value_sum / count, value_min, value_max)
        totals[code] = {
            "count": count,
            "days_with_data": int(days_with_data),
            "avg": _round(stats[0]),
            "min": _round(stats[1]),
            "max": _round(stats[2]),
            "secondary": (
                {"avg": _round(sec_sum / sec_count), "min": _round(sec_min), "max": _round(sec_max)}
                if metric_type.requires_secondary and sec_count
                else None
            ),
        }
    return totals


def metric_summary(
    *, user_id: int, tz: str, days: int, today: date, metric_types: Sequence[str] | None = None
) -> dict[str, Any]:
    """Summary of the last ``days`` local days (today included) per metric type: two queries.

    Returns ``{start_date, end_date, metrics: {type: {metric_type, unit,
    daily_aggregate, count, days_with_data, avg, min, max, secondary, latest, daily}}}``
    (see ``metrics.serializers.SummarySerializer`` for what each number means).
    """
    types = list(metric_types) if metric_types else list(METRIC_TYPES)
    first_day = today - timedelta(days=days - 1)
    since, until = local_day_bounds(tz=tz, first_day=first_day, last_day=today)
    series = metric_daily_series(user_id=user_id, metric_types=types, since=since, until=until, tz=tz)
    totals = metric_totals(user_id=user_id, metric_types=types, since=since, until=until, tz=tz)
    metrics: dict[str, Any] = {}
    for code in types:
        if code not in totals or code not in series:
            continue
        metric_type = METRIC_TYPES[code]
        points = series[code]
        metrics[code] = {
            "metric_type": code,
            "unit": metric_type.canonical_unit,
            "daily_aggregate": metric_type.daily_aggregate.value,
            **totals[code],
            # The latest sample of the window is the latest of its last local day.
            "latest": points[-1]["latest"],
            "daily": [{k: v for k, v in point.items() if k != "latest"} for point in points],
        }
    return {"start_date": first_day.isoformat(), "end_date": today.isoformat(), "metrics": metrics}


SUMMARY_CACHE_NAME = "metric_summary"


def metric_summary_cache_parts(*, days: int, metric_type: str | None) -> tuple:
    """The parts of a summary's cache key. The time zone and the local date it was
    computed for are kept in the entry (``metric_summary_cached_body``), not in the key,
    so a reader can name the key before it knows the person's time zone."""
    return (days, metric_type or "all")


def metric_summary_cached_body(entry: Any, *, tz: str, today: date) -> bytes | None:
    """The body stored in a summary cache ``entry``, if it was computed in ``tz`` for
    ``today``; None when the person's time zone or local date has changed since."""
    if isinstance(entry, tuple) and len(entry) == 3 and entry[0] == tz and entry[1] == today.isoformat():
        return entry[2]
    return None


def metric_summary_body(
    *, user_id: int, tz: str, days: int, today: date, metric_type: str | None = None
) -> tuple[bytes, bool]:
    """The JSON body of ``GET /health-metrics/summary`` and whether it came from the cache.

    The cache holds the finished body (``cached: true``, as served on a hit) under the
    user's data version, so a hit is served without rendering; on a miss the summary is
    computed (``metric_summary``), stored, and answered with ``cached: false``.
    """
    fresh: dict[str, Any] = {}

    def compute() -> tuple[str, str, bytes]:
        summary = metric_summary(
            user_id=user_id,
            tz=tz,
            days=days,
            today=today,
            metric_types=[metric_type] if metric_type else None,
        )
        fresh["payload"] = {
            "user_id": user_id,
            "days": days,
            "timezone": tz,
            "start_date": summary["start_date"],
            "end_date": summary["end_date"],
            "cached": True,
            "metrics": summary["metrics"],
        }
        return tz, today.isoformat(), dumps(fresh["payload"])

    parts = metric_summary_cache_parts(days=days, metric_type=metric_type)
    timeout = settings.REDIS_CACHE_EXPIRE_METRICS
    entry, cached = cached_for_user(user_id, SUMMARY_CACHE_NAME, parts, timeout, compute)
    if cached:
        body = metric_summary_cached_body(entry, tz=tz, today=today)
        if body is not None:
            return body, True
        # Computed for another local day or time zone: replace it.
        cached_for_user(user_id, SUMMARY_CACHE_NAME, parts, timeout, compute, refresh=True)
    return dumps({**fresh["payload"], "cached": False}), False
