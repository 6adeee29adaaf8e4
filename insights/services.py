"""Insights: recommendations for one person (cached), compute_insights batches, and the
writes behind the insights API."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.exceptions import NotFound, PermissionDenied

from healthtrack.cache import cached_for_user
from healthtrack.db import zone_or_utc
from healthtrack.renderers import dumps
from healthtrack.serializers import iso_datetime
from insights import selectors
from insights.engine import Recommendation, recommend
from insights.models import HealthInsight
from users.models import User
from users.selectors import user_timezone_name

logger = logging.getLogger("healthtrack.insights")

RECOMMENDATIONS_CACHE_NAME = "recommendations"
DEFAULT_WINDOW_DAYS = 30
MAX_WINDOW_DAYS = 365

# What compute_insights writes on an engine-made row; is_read / read_at are the
# person's and never touched.
STORED_FIELDS = (
    "title",
    "category",
    "description",
    "reasoning",
    "action_steps",
    "evidence",
    "severity",
    "score",
    "rank",
    "related_metric_type",
)


# --- Recommendations for one person --------------------------------------------------


def recommendations_for_user(
    *, user_id: int, days: int = DEFAULT_WINDOW_DAYS, now: datetime.datetime | None = None
) -> list[Recommendation] | None:
    """The ranked top five for an active user over the last ``days`` local days; None
    when there is no such active user."""
    batch = selectors.insight_features_for_users(user_ids=[user_id], days=days, now=now)
    features = batch.features.get(user_id)
    if features is None:
        if user_id in batch.errors:
            raise RuntimeError(f"Insight features of user {user_id} failed: {batch.errors[user_id]}")
        return None
    return recommend(features)


class _NoSuchUser(Exception):
    pass


def recommendations_body(*, user_id: int, days: int, use_cache: bool = True) -> tuple[bytes, bool]:
    """The JSON body of ``GET /recommendations/{user_id}`` and whether it came from the cache.

    The cache holds the finished body (as served on a hit, ``cached: true``) per user and
    ``days`` under the user's data version, so a hit costs two cache round trips and no
    query, and any write to the person's metrics, meals or goals makes the next call
    fresh. ``generated_at`` is when it was computed. ``use_cache=False`` recomputes and
    replaces the cached body. NotFound when there is no such active user.
    """
    fresh: dict[str, Any] = {}

    def compute() -> bytes:
        recommendations = recommendations_for_user(user_id=user_id, days=days)
        if recommendations is None:
            raise _NoSuchUser
        fresh["payload"] = {
            "user_id": user_id,
            "days": days,
            "generated_at": iso_datetime(timezone.now()),
            "cached": True,
            "recommendations": [item.as_dict() for item in recommendations],
        }
        return dumps(fresh["payload"])

    try:
        body, cached = cached_for_user(
            user_id,
            RECOMMENDATIONS_CACHE_NAME,
            (days,),
            settings.REDIS_CACHE_EXPIRE_INSIGHTS,
            compute,
            refresh=not use_cache,
        )
    except _NoSuchUser:
        raise NotFound() from None
    if not cached:
        body = dumps({**fresh["payload"], "cached": False})
    return body, cached


# --- compute_insights ----------------------------------------------------------------


@dataclass
class ComputeResult:
    """What a batch (or a whole run) did. ``failed`` maps user id to the reason."""

    users: int = 0
    insights: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: dict[int, str] = field(default_factory=dict)
    # Per user, the codes computed (kept for --dry-run output; small per batch).
    codes: dict[int, list[str]] = field(default_factory=dict)

    def add(self, other: ComputeResult) -> None:
        for name in ("users", "insights", "created", "updated", "unchanged", "removed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.failed.update(other.failed)


def _stored_values(recommendation: Recommendation) -> dict[str, Any]:
    values = {name: getattr(recommendation, name) for name in STORED_FIELDS}
    values["title"] = values["title"][:200]
    values["action_steps"] = list(values["action_steps"])
    return values


def insights_store(
    *, results: dict[int, tuple[datetime.date, list[Recommendation]]], dry_run: bool = False
) -> ComputeResult:
    """Store each user's ranked recommendations as engine-made insights for their day.

    One row per (user, code, day): new codes are inserted, changed ones updated in
    place (same id; ``is_read``/``read_at`` untouched, so what the person read stays
    read), identical ones left alone, and unread rows of that day whose code is no
    longer in the top five removed. A fixed number of queries per batch: one read, then
    one bulk insert, one bulk update and one delete (each split only by the database's
    parameter limit).
    """
    outcome = ComputeResult()
    if not results:
        return outcome
    # People in different time zones have different days; the query covers all of them,
    # and each person's rows of any day but their own are not this run's business.
    existing: dict[tuple[int, str, datetime.date], HealthInsight] = {
        (row.user_id, row.code, row.insight_date): row
        for row in selectors.insight_engine_rows(
            user_ids=list(results), days={day for day, _ in results.values()}
        ).only("id", "user_id", "code", "insight_date", "is_read", *STORED_FIELDS)
        if row.insight_date == results[row.user_id][0]
    }
    now = timezone.now()
    to_create: list[HealthInsight] = []
    to_update: list[HealthInsight] = []
    keep: set[tuple[int, str, datetime.date]] = set()
    for user_id, (day, recommendations) in results.items():
        for recommendation in recommendations:
            key = (user_id, recommendation.code, day)
            keep.add(key)
            values = _stored_values(recommendation)
            row = existing.get(key)
            if row is None:
                to_create.append(
                    HealthInsight(user_id=user_id, code=recommendation.code, insight_date=day, **values)
                )
            elif any(getattr(row, name) != value for name, value in values.items()):
                for name, value in values.items():
                    setattr(row, name, value)
                row.updated_at = now
                to_update.append(row)
            else:
                outcome.unchanged += 1
    stale = [row.pk for key, row in existing.items() if key not in keep and not row.is_read]
    outcome.created, outcome.updated, outcome.removed = len(to_create), len(to_update), len(stale)
    outcome.insights = sum(len(recommendations) for _, recommendations in results.values())
    if dry_run:
        return outcome
    if to_create:
        HealthInsight.objects.bulk_create(to_create)
    if to_update:
        HealthInsight.objects.bulk_update(to_update, [*STORED_FIELDS, "updated_at"])
    if stale:
        HealthInsight.objects.filter(pk__in=stale).delete()
    return outcome


def _compute(
    user_ids: Sequence[int], *, days: int, now: datetime.datetime
) -> tuple[ComputeResult, dict[int, tuple[datetime.date, list[Recommendation]]]]:
    outcome = ComputeResult()
    # A savepoint, so a failing query cannot break a surrounding transaction.
    with transaction.atomic():
        batch = selectors.insight_features_for_users(user_ids=user_ids, days=days, now=now)
    outcome.failed.update(batch.errors)
    results: dict[int, tuple[datetime.date, list[Recommendation]]] = {}
    for user_id, features in batch.features.items():
        try:
            results[user_id] = (features.today, recommend(features))
        except Exception as error:  # one person's bad data must not stop the batch
            logger.exception("compute_insights: recommendations failed for user %s", user_id)
            outcome.failed[user_id] = f"{error.__class__.__name__}: {error}"
    outcome.users = len(results)
    outcome.codes = {user_id: [item.code for item in items] for user_id, (_, items) in results.items()}
    return outcome, results


def _store_with_retry(results, *, dry_run: bool) -> ComputeResult:
    try:
        with transaction.atomic():
            return insights_store(results=results, dry_run=dry_run)
    except IntegrityError:
        # Another run stored the same (user, code, day) meanwhile: read again and update.
        logger.warning("compute_insights: concurrent write of the same insights; storing again")
        with transaction.atomic():
            return insights_store(results=results, dry_run=dry_run)


def insights_compute_batch(
    *,
    user_ids: Sequence[int],
    days: int = DEFAULT_WINDOW_DAYS,
    now: datetime.datetime | None = None,
    dry_run: bool = False,
) -> ComputeResult:
    """Compute and store the insights of one batch of users (compute_insights).

    A fixed number of queries whatever the batch size (the five feature queries, then
    ``insights_store``). A user whose data breaks a rule is logged with their id and
    left out; if a batch query itself fails (say, a time zone the database does not
    know), the batch is retried user by user so only the culprit is left out.
    """
    now = now or timezone.now()
    try:
        computed, results = _compute(user_ids, days=days, now=now)
    except Exception:  # a batch-level failure: find the person behind it
        if len(user_ids) == 1:
            logger.exception("compute_insights: could not read the data of user %s", user_ids[0])
            return ComputeResult(failed={user_ids[0]: "their data could not be read (logged above)"})
        logger.warning("compute_insights: a batch of %s users failed; retrying one by one", len(user_ids))
        outcome = ComputeResult()
        for user_id in user_ids:
            single = insights_compute_batch(user_ids=[user_id], days=days, now=now, dry_run=dry_run)
            outcome.add(single)
            outcome.codes.update(single.codes)
        return outcome
    stored = _store_with_retry(results, dry_run=dry_run)
    stored.users, stored.failed, stored.codes = computed.users, computed.failed, computed.codes
    return stored


# --- The insights API ----------------------------------------------------------------


@transaction.atomic
def insight_create(*, author: User, user_id: int, data: dict[str, Any]) -> HealthInsight:
    """An insight written by a clinician or an administrator for a person.

    Refused (403) for anyone else and for oneself: an insight is someone else's
    professional view of a person's data, and one's own notes are not that.
    """
    if author.pk == user_id:
        raise PermissionDenied("You cannot write insights about yourself.")
    zone_name = user_timezone_name(user_id=user_id, active_only=True)
    if zone_name is None:
        raise NotFound()
    values = dict(data)
    if values.get("insight_date") is None:
        values["insight_date"] = timezone.localdate(timezone=zone_or_utc(zone_name))
    return HealthInsight.objects.create(user_id=user_id, created_by=author, **values)


def insight_mark_read(*, insight: HealthInsight, is_read: bool) -> HealthInsight:
    """Mark read (``read_at`` = first time it was marked read) or unread."""
    if insight.is_read == is_read:
        return insight
    insight.is_read = is_read
    insight.read_at = timezone.now() if is_read else None
    insight.save(update_fields=["is_read", "read_at", "updated_at"])
    return insight
