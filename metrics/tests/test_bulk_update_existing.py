"""metric_bulk_ingest(update_existing=..., notify=...): samples that replace an older
version of themselves (an import's daily totals), and writes that announce themselves later."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection

from healthtrack.cache import user_data_version
from metrics import selectors, services
from metrics.models import HealthMetric
from metrics.tests.factories import HealthMetricFactory

pytestmark = pytest.mark.django_db

DAY = datetime.datetime(2024, 3, 1, 20, 0, tzinfo=datetime.UTC)


def daily(external_id, value, *, metric_type="steps", notes="", recorded_at=DAY):
    return {
        "metric_type": metric_type,
        "value": value,
        "recorded_at": recorded_at.isoformat(),
        "source": "apple_health",
        "external_id": external_id,
        "notes": notes,
    }


def totals_only(source, external_id):
    return source == "apple_health" and external_id.startswith("day:")


def stored(user):
    return {
        m.external_id: (m.value, m.notes, m.recorded_at)
        for m in HealthMetric.objects.filter(user=user).order_by("id")
    }


def test_a_changed_total_overwrites_the_stored_one_and_an_equal_one_is_a_duplicate(user, goal_calls):
    first = services.metric_bulk_ingest(
        user_id=user.pk,
        samples=[daily("day:1", 4000), daily("day:2", 5000), daily("hr:1", 60, metric_type="heart_rate")],
        update_existing=totals_only,
    )
    ids = {m.external_id: m.pk for m in HealthMetric.objects.all()}
    later = DAY + datetime.timedelta(hours=1)
    second = services.metric_bulk_ingest(
        user_id=user.pk,
        samples=[
            daily("day:1", 4700, notes="iPhone", recorded_at=later),  # changed: updated
            daily("day:2", 5000),  # the same: a duplicate
            daily("day:3", 800),  # new
            daily("hr:1", 61, metric_type="heart_rate"),  # not updatable: a duplicate, unchanged
        ],
        update_existing=totals_only,
    )

    assert (len(first.created_ids), first.updated_ids, first.duplicates) == (3, [], 0)
    assert (len(second.created_ids), second.updated_ids, second.duplicates) == (1, [ids["day:1"]], 2)
    assert second.changed_types == {"steps"}
    assert stored(user) == {
        "day:1": (4700, "iPhone", later),
        "day:2": (5000, "", DAY),
        "hr:1": (60, "", DAY),
        "day:3": (800, "", DAY),
    }
    assert HealthMetric.objects.get(external_id="day:1").pk == ids["day:1"]  # the same row
    assert goal_calls[-1] == (user.pk, ["steps"])


def test_without_update_existing_a_stored_sync_id_is_never_changed(user):
    services.metric_bulk_ingest(user_id=user.pk, samples=[daily("day:1", 4000)])
    result = services.metric_bulk_ingest(user_id=user.pk, samples=[daily("day:1", 9000)])
    assert (result.created_ids, result.updated_ids, result.duplicates) == ([], [], 1)
    assert stored(user)["day:1"][0] == 4000


def test_an_update_is_validated_like_any_sample(user):
    services.metric_bulk_ingest(user_id=user.pk, samples=[daily("day:1", 4000)], update_existing=totals_only)
    result = services.metric_bulk_ingest(
        user_id=user.pk, samples=[daily("day:1", -5)], update_existing=totals_only
    )
    assert result.errors == [
        {"index": 0, "field": "value", "message": "steps must be between 0 and 100000 count."}
    ]
    assert stored(user)["day:1"][0] == 4000


def test_another_users_row_with_the_same_sync_id_is_not_touched(user, other_user):
    HealthMetricFactory(user=other_user, source="apple_health", external_id="day:1", value=1)
    result = services.metric_bulk_ingest(
        user_id=user.pk, samples=[daily("day:1", 4000)], update_existing=totals_only
    )
    assert len(result.created_ids) == 1
    assert HealthMetric.objects.get(user=other_user).value == 1


def test_notify_false_leaves_cache_and_goals_to_the_caller(user, goal_calls):
    version = user_data_version(user.pk)
    result = services.metric_bulk_ingest(
        user_id=user.pk, samples=[daily("day:1", 4000), daily("w", 70, metric_type="weight")], notify=False
    )
    assert len(result.created_ids) == 2 and result.changed_types == {"steps", "weight"}
    assert goal_calls == [] and user_data_version(user.pk) == version
    # The default announces every write.
    services.metric_bulk_ingest(user_id=user.pk, samples=[daily("day:2", 1)])
    assert goal_calls == [(user.pk, ["steps"])] and user_data_version(user.pk) != version


def test_a_row_deleted_after_the_look_up_is_retried_and_created_again(user, monkeypatch):
    """Another request deletes the stored total between our look-up and our update: the
    batch is rolled back and written again, so the new total is stored, not lost."""
    services.metric_bulk_ingest(user_id=user.pk, samples=[daily("day:1", 4000)], update_existing=totals_only)
    real = selectors.metric_stored_sync_keys
    calls = []

    def look_up_then_delete(**kwargs):
        calls.append(1)
        found = real(**kwargs)
        if len(calls) == 1:
            HealthMetric.objects.filter(external_id="day:1").delete()
        return found

    monkeypatch.setattr(selectors, "metric_stored_sync_keys", look_up_then_delete)
    result = services.metric_bulk_ingest(
        user_id=user.pk, samples=[daily("day:1", 4700)], update_existing=totals_only
    )
    assert len(calls) == 2
    assert (len(result.created_ids), result.updated_ids, result.duplicates) == (1, [], 0)
    assert stored(user)["day:1"][0] == 4700


def test_an_update_that_matches_no_row_is_retried(user, monkeypatch):
    """The row vanished between reading its values and the UPDATE (0 rows matched)."""
    services.metric_bulk_ingest(user_id=user.pk, samples=[daily("day:1", 4000)], update_existing=totals_only)
    real = selectors.metric_synced_rows
    calls = []

    def stale_id(**kwargs):
        calls.append(1)
        found = real(**kwargs)
        if len(calls) == 1:
            for row in found.values():
                row["id"] += 1000
        return found

    monkeypatch.setattr(selectors, "metric_synced_rows", stale_id)
    result = services.metric_bulk_ingest(
        user_id=user.pk, samples=[daily("day:1", 4700)], update_existing=totals_only
    )
    assert len(calls) == 2
    assert (len(result.created_ids), len(result.updated_ids)) == (0, 1)
    assert stored(user)["day:1"][0] == 4700


def test_update_query_count(user, goal_calls, django_assert_num_queries):
    services.metric_bulk_ingest(
        user_id=user.pk, samples=[daily(f"day:{n}", 1000 + n) for n in range(50)], update_existing=totals_only
    )
    samples = [daily(f"day:{n}", 2000 + n) for n in range(50)] + [daily(f"day:{n}", 1) for n in range(50, 60)]
    # stored ids + stored values + one UPDATE + INSERT, inside a savepoint pair. SQLite's
    # bulk_update may split its statement to stay under the parameter limit.
    fields = [HealthMetric._meta.get_field(name) for name in services.UPDATABLE_COLUMNS]
    updates = -(-50 // connection.ops.bulk_batch_size(["pk", "pk", *fields], [None] * 50))
    with django_assert_num_queries(2 + updates + 1 + 2):
        result = services.metric_bulk_ingest(user_id=user.pk, samples=samples, update_existing=totals_only)
    assert (len(result.created_ids), len(result.updated_ids)) == (10, 50)
