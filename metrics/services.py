"""Writes of health metrics: create (idempotent by sync id), update, delete, bulk ingest.

Every write bumps the owner's data version (cached summaries become stale at once) and
lets the owner's goals follow the changed metric types, inside the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connections, router, transaction
from django.utils import timezone
from rest_framework.exceptions import NotFound

from goals.selectors import goal_followed_metric_types_sql
from goals.services import goals_follow_metrics
from healthtrack.cache import user_data_version_bump
from metrics import selectors
from metrics.models import HealthMetric
from metrics.registry import METRIC_TYPES
from metrics.validation import SAMPLE_FIELDS, errors_as_dict, sample_clean

# Columns the bulk insert writes besides user_id and created_at (a test checks that they
# and those two are every column of the table).
INSERT_COLUMNS = SAMPLE_FIELDS
_POSTGRES_ARRAY_TYPES = {
    "metric_type": "text",
    "value": "float8",
    "secondary_value": "float8",
    "unit": "text",
    "recorded_at": "timestamptz",
    "source": "text",
    "external_id": "text",
    "notes": "text",
}

# A concurrent writer can store one of our sync ids between the look-up and the insert;
# each retry drops the ids found stored, so a third conflict means something else is wrong.
BULK_INSERT_ATTEMPTS = 3


def metric_data_changed(*, user_id: int, metric_types: Iterable[str]) -> None:
    """What follows every write of a user's samples (also those made in the admin):
    cached reads of their data go stale, and their goals follow the changed types."""
    user_data_version_bump(user_id=user_id)
    goals_follow_metrics(user_id=user_id, metric_types=sorted(set(metric_types)))


def metric_create(*, user_id: int, fields: Mapping[str, Any]) -> tuple[HealthMetric, bool]:
    """Store one validated sample (``sample_clean`` output) for ``user_id``.

    Returns ``(metric, created)``. A sample whose (source, external_id) the user already
    has is not stored again: the stored one is returned with ``created=False``, also
    when a concurrent request stores it between our look-up and our insert. What
    ``metric_data_changed`` does follows: the person's cached reads go stale, and their
    goals that follow the type are brought up to date in the insert's transaction.
    """
    source, external_id = fields["source"], fields["external_id"]
    if external_id is not None:
        stored = selectors.metric_find_synced(user_id=user_id, source=source, external_id=external_id)
        if stored is not None:
            return stored, False
    try:
        metric = _metric_insert_unfollowed(user_id=user_id, fields=fields)
        if metric is None:
            with transaction.atomic():
                metric = HealthMetric.objects.create(user_id=user_id, **fields)
                metric_data_changed(user_id=user_id, metric_types=[metric.metric_type])
        else:  # no goal follows the type: only the cached reads go stale
            user_data_version_bump(user_id=user_id)
    except IntegrityError:
        if external_id is None:
            raise
        stored = selectors.metric_find_synced(user_id=user_id, source=source, external_id=external_id)
        if stored is None:
            raise
        return stored, False
    return metric, True


_metric_insert_statements: dict[str, str] = {}


def _metric_insert_unfollowed(*, user_id: int, fields: Mapping[str, Any]) -> HealthMetric | None:
    """On PostgreSQL, insert the sample in one statement unless an active goal of the
    person follows its type; None when it inserted nothing (a goal follows, or another
    database), so that the caller inserts it and updates the goals in one transaction.

    Almost every sample is followed by no goal: then the look-up that
    ``goals_follow_metrics`` would make, the insert and its commit are one round trip
    instead of four (BEGIN, insert, look-up, COMMIT), and the ORM compiles nothing.
    A POST's queries and the ORM's insert were about a third of the route's CPU.
    """
    connection = connections[router.db_for_write(HealthMetric)]
    if connection.vendor != "postgresql" or fields["metric_type"] not in METRIC_TYPES:
        return None
    followed_sql, followed_params = goal_followed_metric_types_sql(
        user_id=user_id, metric_types=[fields["metric_type"]]
    )
    sql = _metric_insert_statements.get(followed_sql)
    if sql is None:
        sql = _metric_insert_statements[followed_sql] = _metric_insert_unfollowed_sql(
            connection, followed_sql
        )
    metric = HealthMetric(user_id=user_id, created_at=timezone.now(), **fields)
    params = [user_id, *(fields[name] for name in INSERT_COLUMNS), metric.created_at, *followed_params]
    # Alone, the statement is its own transaction. Inside a caller's, a savepoint keeps a
    # duplicate sync id (IntegrityError) from aborting the caller's transaction.
    savepoint = transaction.atomic(using=connection.alias) if connection.in_atomic_block else nullcontext()
    with savepoint, connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    metric.pk = row[0]
    metric._state.adding, metric._state.db = False, connection.alias
    return metric


def _insert_columns_sql(connection) -> str:
    """The quoted columns a raw insert of samples writes: the owner, ``INSERT_COLUMNS``,
    then ``created_at`` (the order of its values in both inserts here)."""
    quote = connection.ops.quote_name
    meta = HealthMetric._meta
    return ", ".join(quote(meta.get_field(name).column) for name in ("user", *INSERT_COLUMNS, "created_at"))


def _metric_insert_unfollowed_sql(connection, followed_sql: str) -> str:
    quote = connection.ops.quote_name
    meta = HealthMetric._meta
    columns = _insert_columns_sql(connection)
    values = ", ".join(
        ["%s::bigint", *(f"%s::{_POSTGRES_ARRAY_TYPES[name]}" for name in INSERT_COLUMNS), "%s::timestamptz"]
    )
    # Identifiers come from the models, every value is a parameter.
    return (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) "
        f"SELECT {values} WHERE NOT EXISTS ({followed_sql}) RETURNING {quote(meta.pk.column)}"
    )


def metric_update(*, metric_id: int, data: Any, partial: bool, now: datetime | None = None) -> HealthMetric:
    """Apply a PUT (``partial=False``) or PATCH body to a stored sample.

    The row is locked and the whole resulting sample is validated again (a new
    ``metric_type`` re-checks the unit and range of the value), so two concurrent
    edits can never combine into an invalid sample.
    """
    with transaction.atomic():
        metric = HealthMetric.objects.select_for_update().filter(pk=metric_id).first()
        if metric is None:
            raise NotFound()
        fields, errors = sample_clean(
            data, user_id=metric.user_id, now=now or timezone.now(), instance=metric, partial=partial
        )
        if errors:
            raise ValidationError(errors_as_dict(errors))
        previous_type = metric.metric_type
        for name, value in fields.items():
            setattr(metric, name, value)
        metric.save(update_fields=list(fields))
        metric_data_changed(user_id=metric.user_id, metric_types={previous_type, metric.metric_type})
    return metric


@transaction.atomic
def metric_delete(*, metric: HealthMetric) -> None:
    HealthMetric.objects.filter(pk=metric.pk).delete()
    metric_data_changed(user_id=metric.user_id, metric_types=[metric.metric_type])


def _sync_order(row: Mapping[str, Any]) -> tuple[str, str]:
    return (row.get("source") or "", row.get("external_id") or "")


def _insert_rows(*, user_id: int, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert validated rows in one statement; return their ids.

    On PostgreSQL one ``INSERT ... SELECT FROM unnest(<one array per column>)``: ten
    parameters instead of ten thousand and no model instances, several times faster
    than ``bulk_create`` for 1,000 rows (the bulk ingest speed target). Elsewhere
    (SQLite) ``bulk_create``.
    """
    # Same order in every transaction, so two imports of overlapping sync ids wait for
    # each other on the first shared id (then retry without it) instead of deadlocking.
    rows = sorted(rows, key=_sync_order)
    connection = connections[router.db_for_write(HealthMetric)]
    if connection.vendor != "postgresql":
        created = HealthMetric.objects.bulk_create([HealthMetric(user_id=user_id, **row) for row in rows])
        return [metric.pk for metric in created]
    quote = connection.ops.quote_name
    meta = HealthMetric._meta
    columns = _insert_columns_sql(connection)
    arrays = ", ".join(f"%s::{_POSTGRES_ARRAY_TYPES[name]}[]" for name in INSERT_COLUMNS)
    aliases = [f"c{index}" for index in range(len(INSERT_COLUMNS))]
    # Identifiers come from the model, every value is a parameter. ORDER BY keeps the
    # sorted order (and so the lock order) explicit.
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) "  # noqa: S608
        f"SELECT %s, {', '.join(f'u.{a}' for a in aliases)}, %s "
        f"FROM unnest({arrays}) WITH ORDINALITY AS u({', '.join(aliases)}, position) "
        f"ORDER BY u.position RETURNING {quote(meta.pk.column)}"
    )
    params = [user_id, timezone.now(), *([row[name] for row in rows] for name in INSERT_COLUMNS)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


@dataclass
class BulkResult:
    created_ids: list[int] = field(default_factory=list)
    duplicates: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    # Stored samples brought up to date (only with ``update_existing``).
    updated_ids: list[int] = field(default_factory=list)
    # Metric types of the samples created or updated: what ``metric_data_changed`` needs.
    changed_types: set[str] = field(default_factory=set)


# Fields of a stored sample that ``update_existing`` may bring up to date: everything but
# the owner and the sync identity (source, external_id).
UPDATABLE_COLUMNS = ("metric_type", "value", "secondary_value", "unit", "recorded_at", "notes")


class _StoredRowChanged(RuntimeError):
    """A stored sample we were updating was deleted meanwhile: the batch is retried."""


def _updates_for(
    *,
    user_id: int,
    rows: Sequence[Mapping[str, Any]],
    stored: set[tuple[str, str]],
    update_existing: Callable[[str, str], bool],
) -> list[HealthMetric]:
    """Of the rows whose sync id is ``stored`` and accepted by ``update_existing``, the
    stored samples to rewrite: those whose values differ (one query reads them)."""
    wanted = {}
    for row in rows:
        key = (row["source"], row["external_id"])
        if key in stored and update_existing(*key):
            wanted[key] = row
    if not wanted:
        return []
    current = selectors.metric_synced_rows(user_id=user_id, keys=wanted, fields=UPDATABLE_COLUMNS)
    if len(current) != len(wanted):
        raise _StoredRowChanged("A stored sample was deleted while the batch was being written.")
    changed = []
    for key, stored_row in current.items():
        row = wanted[key]
        if any(stored_row[name] != row[name] for name in UPDATABLE_COLUMNS):
            changed.append(
                HealthMetric(pk=stored_row["id"], user_id=user_id, **{n: row[n] for n in UPDATABLE_COLUMNS})
            )
    return changed


def metric_bulk_ingest(
    *,
    user_id: int,
    samples: Sequence[Any],
    now: datetime | None = None,
    update_existing: Callable[[str, str], bool] | None = None,
    notify: bool = True,
) -> BulkResult:
    """Validate each sample and store every valid, new one in one transaction.

    Invalid samples are reported as ``{index, field, message}`` and skipped; so are
    samples whose (source, external_id) is already stored or appeared earlier in the
    batch (counted in ``duplicates``). One query finds the stored sync ids, one bulk
    INSERT stores the rest. If a concurrent writer stores one of our ids in between,
    the insert fails as a whole, is rolled back, and is retried without the ids now
    stored: nothing is lost and nothing is stored twice.

    ``update_existing(source, external_id)``: sync ids for which a stored sample is not a
    duplicate but an older version (e.g. an import's daily totals, recomputed from a later
    export). Such a sample overwrites the stored one's type, value, unit, time and notes
    when any differs (one more query to read them, one bulk UPDATE) and is counted in
    ``updated_ids``; when nothing differs it is a duplicate. Other sync ids are never
    changed.

    ``notify=False`` leaves ``metric_data_changed`` to the caller (imports writing many
    batches call it once, with ``changed_types``, at the end).
    """
    now = now or timezone.now()
    result = BulkResult()
    rows: list[dict[str, Any]] = []
    sync_keys: set[tuple[str, str]] = set()
    for index, sample in enumerate(samples):
        fields, errors = sample_clean(sample, user_id=user_id, now=now)
        if errors:
            result.errors.extend(
                {"index": index, "field": name, "message": message} for name, message in errors
            )
            continue
        if fields["external_id"] is not None:
            key = (fields["source"], fields["external_id"])
            if key in sync_keys:
                result.duplicates += 1
                continue
            sync_keys.add(key)
        rows.append(fields)
    if not rows:
        return result

    for attempt in range(1, BULK_INSERT_ATTEMPTS + 1):
        stored = selectors.metric_stored_sync_keys(user_id=user_id, keys=sync_keys) if sync_keys else set()
        fresh = [
            row
            for row in rows
            if row["external_id"] is None or (row["source"], row["external_id"]) not in stored
        ]
        try:
            with transaction.atomic():
                updates = (
                    _updates_for(user_id=user_id, rows=rows, stored=stored, update_existing=update_existing)
                    if update_existing is not None and stored
                    else []
                )
                # A key stored after our look-up is caught by the insert (IntegrityError);
                # one deleted after it would make the update miss: retry in both cases.
                if updates and HealthMetric.objects.bulk_update(updates, UPDATABLE_COLUMNS) != len(updates):
                    raise _StoredRowChanged("A stored sample was deleted while it was being updated.")
                created_ids = _insert_rows(user_id=user_id, rows=fresh) if fresh else []
                changed_types = {row["metric_type"] for row in fresh} | {m.metric_type for m in updates}
                if notify and changed_types:
                    metric_data_changed(user_id=user_id, metric_types=changed_types)
        except (IntegrityError, _StoredRowChanged):
            if attempt == BULK_INSERT_ATTEMPTS:
                raise
            continue
        result.created_ids = created_ids
        result.updated_ids = [metric.pk for metric in updates]
        result.changed_types = changed_types
        result.duplicates += len(rows) - len(fresh) - len(updates)
        break
    return result
