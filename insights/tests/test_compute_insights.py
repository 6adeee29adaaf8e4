"""manage.py compute_insights: idempotent, sharded, batched, resilient."""

from __future__ import annotations

import datetime
import io
import logging

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from insights import selectors, services
from insights.models import HealthInsight
from insights.tests.helpers import add_daily_meals, add_daily_metrics, add_metric, unhealthy_month
from users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def run(*args, **options) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("compute_insights", *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def engine_rows():
    return sorted(
        HealthInsight.objects.filter(created_by__isnull=True).values_list(
            "id", "user_id", "code", "insight_date", "rank", "is_read"
        )
    )


def test_stores_top_five_per_active_person():
    sick, new = UserFactory(), UserFactory()
    UserFactory(is_active=False)
    unhealthy_month(sick)
    out, _ = run()
    rows = HealthInsight.objects.filter(user=sick).order_by("rank")
    assert [row.code for row in rows][:3] == ["insufficient_sleep", "low_steps", "low_water_intake"]
    assert [row.rank for row in rows] == list(range(1, rows.count() + 1))
    steps = rows.get(code="low_steps")
    assert steps.evidence["average"] == 3_000 and steps.severity == "medium" and steps.category == "activity"
    assert steps.action_steps and steps.reasoning and steps.description
    assert steps.insight_date == timezone.localdate()
    assert steps.created_by is None
    assert list(HealthInsight.objects.filter(user=new).values_list("code", flat=True)) == ["missing_data"]
    assert HealthInsight.objects.count() == rows.count() + 1
    assert "2 users in" in out
    assert f"{rows.count() + 1} created, 0 updated, 0 unchanged, 0 removed" in out


def test_running_twice_changes_nothing_and_read_stays_read():
    person = UserFactory()
    unhealthy_month(person)
    run()
    first = engine_rows()
    out, _ = run()
    assert engine_rows() == first
    assert f"0 created, 0 updated, {len(first)} unchanged, 0 removed" in out

    steps = HealthInsight.objects.get(user=person, code="low_steps")
    steps.is_read, steps.read_at = True, timezone.now()
    steps.save()
    add_daily_metrics(person, "steps", [1_000] * 5, first_days_ago=11)  # the numbers change
    out, _ = run()
    steps.refresh_from_db()
    assert steps.evidence["days_with_data"] == 15
    assert steps.is_read is True and steps.read_at is not None
    assert "0 created" in out and "0 updated" not in out
    assert HealthInsight.objects.filter(user=person, code="low_steps").count() == 1


def test_codes_no_longer_in_the_top_five_are_removed_unless_read():
    person = UserFactory()
    unhealthy_month(person)
    run()
    sleep = HealthInsight.objects.get(user=person, code="insufficient_sleep")
    water = HealthInsight.objects.get(user=person, code="low_water_intake")
    water.is_read = True
    water.save()
    add_daily_metrics(person, "sleep", [9.0] * 20, first_days_ago=10)  # sleep is fine now
    add_daily_meals(person, 20, first_days_ago=10, water_ml=3_000)  # water too
    out, _ = run()
    assert not HealthInsight.objects.filter(pk=sleep.pk).exists()
    assert HealthInsight.objects.filter(pk=water.pk, is_read=True).exists()
    assert "1 removed" in out


def test_shards_partition_the_users_exactly():
    people = [UserFactory() for _ in range(7)]
    for shard in range(3):
        run("--shard", f"{shard}/3")
    by_user = dict(HealthInsight.objects.values_list("user_id", "code"))
    assert sorted(by_user) == sorted(person.pk for person in people)
    HealthInsight.objects.all().delete()
    run("--shard", "1/3")
    assert sorted(HealthInsight.objects.values_list("user_id", flat=True)) == [
        person.pk for person in people if person.pk % 3 == 1
    ]


def test_only_named_users_and_batches():
    people = [UserFactory() for _ in range(5)]
    out, _ = run("--user", str(people[0].pk), str(people[3].pk), "--batch-size", "1")
    assert sorted(HealthInsight.objects.values_list("user_id", flat=True)) == [people[0].pk, people[3].pk]
    assert "2 users in" in out


def test_since_active_skips_dormant_people():
    active, dormant = UserFactory(), UserFactory()
    add_metric(active, "steps", 3_000, days_ago=2)
    add_metric(dormant, "steps", 3_000, days_ago=20)
    run("--since-active", "7")
    assert list(HealthInsight.objects.values_list("user_id", flat=True).distinct()) == [active.pk]


def test_days_option_sets_the_window():
    person = UserFactory()
    unhealthy_month(person, days=10)
    run("--days", "7")
    steps = HealthInsight.objects.get(user=person, code="low_steps")
    assert steps.evidence["window_days"] == 7 and steps.evidence["days_with_data"] == 6


def test_dry_run_writes_nothing_and_says_what_it_would_do():
    person = UserFactory()
    unhealthy_month(person)
    out, _ = run("--dry-run", "--user", str(person.pk))
    assert not HealthInsight.objects.exists()
    assert f"user {person.pk}: insufficient_sleep, low_steps, low_water_intake" in out
    assert "Dry run: 1 users" in out and "would be created" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--days", "0"], "--days must be between 1 and 365"),
        (["--days", "366"], "--days must be between 1 and 365"),
        (["--batch-size", "0"], "--batch-size must be between 1 and 10000"),
        (["--shard", "3/3"], "--shard 3/3: need N >= 1 and 0 <= K < N"),
        (["--shard", "x"], "--shard must look like K/N"),
        (["--shard", "1/0"], "need N >= 1"),
        (["--since-active", "0"], "--since-active must be at least 1 day"),
        (["--user", "999999"], "No active user with id 999999"),
        (["--user", "-3"], "--user ids must be positive"),
    ],
)
def test_bad_arguments_fail_with_a_clear_message(args, message):
    UserFactory()
    with pytest.raises(CommandError, match=message.replace("(", r"\(")):
        run(*args)
    assert not HealthInsight.objects.exists()


def test_progress_only_on_a_terminal():
    UserFactory()
    _, err = run()
    assert err == ""
    _, err = run("--progress", "always")
    assert "1/1 users" in err and "users/s" in err


def test_one_persons_bad_data_is_logged_and_the_run_goes_on(monkeypatch, caplog):
    good, bad, also_good = UserFactory(), UserFactory(), UserFactory()
    real_recommend = services.recommend

    def flaky(features):
        if features.user_id == bad.pk:
            raise ValueError("corrupt sample")
        return real_recommend(features)

    monkeypatch.setattr(services, "recommend", flaky)
    with (
        caplog.at_level(logging.ERROR, logger="healthtrack.insights"),
        pytest.raises(CommandError) as failure,
    ):
        run()
    assert failure.value.returncode == 2
    assert f"1 user(s) could not be processed (details logged above): {bad.pk}" in str(failure.value)
    assert f"recommendations failed for user {bad.pk}" in caplog.text
    assert sorted(HealthInsight.objects.values_list("user_id", flat=True)) == [good.pk, also_good.pk]


def test_a_failing_batch_query_is_retried_user_by_user(monkeypatch):
    people = [UserFactory() for _ in range(3)]
    culprit = people[1].pk
    real = selectors.insight_features_for_users

    def fussy(*, user_ids, days, now=None):
        if culprit in user_ids:
            raise DatabaseError("invalid time zone")
        return real(user_ids=user_ids, days=days, now=now)

    monkeypatch.setattr(selectors, "insight_features_for_users", fussy)
    with pytest.raises(CommandError, match=str(culprit)):
        run()
    assert sorted(HealthInsight.objects.values_list("user_id", flat=True)) == [people[0].pk, people[2].pk]


def _tracked_person():
    """Complete, healthy-looking data except steps: exactly one insight (low_steps)."""
    person = UserFactory(profile__timezone="America/New_York")
    add_daily_metrics(person, "steps", [3_000] * 6)
    add_daily_metrics(person, "sleep", [7.5] * 6, first_days_ago=0)
    add_daily_metrics(person, "weight", [65.0] * 6)
    add_daily_metrics(person, "resting_heart_rate", [62] * 6)
    add_daily_meals(person, 6, calories=1_900, protein_g=90, fat_g=60, water_ml=2_200)
    return person.pk


def _batch_queries(user_ids) -> tuple[int, services.ComputeResult]:
    with CaptureQueriesContext(connection) as queries:
        result = services.insights_compute_batch(user_ids=user_ids)
    return len(queries.captured_queries), result


def test_query_count_of_a_batch_does_not_depend_on_its_size():
    few = [_tracked_person() for _ in range(5)]
    many = [_tracked_person() for _ in range(50)]
    few_count, few_result = _batch_queries(few)
    many_count, many_result = _batch_queries(many)
    assert (few_result.created, many_result.created) == (5, 50)
    assert few_count == many_count
    # Again, with every row already stored and unchanged: reads only.
    again_few, _ = _batch_queries(few)
    again_many, unchanged = _batch_queries(many)
    assert unchanged.unchanged == 50
    assert again_few == again_many < few_count


def test_an_undecryptable_birth_date_skips_only_that_person():
    good, bad = UserFactory(), UserFactory()
    unhealthy_month(good)
    unhealthy_month(bad)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE users_profile SET date_of_birth = %s WHERE user_id = %s", ["not-a-token", bad.pk]
        )
    with pytest.raises(CommandError, match=f": {bad.pk}$"):
        run()
    assert set(HealthInsight.objects.values_list("user_id", flat=True)) == {good.pk}


def test_a_time_zone_the_database_does_not_know_skips_only_that_person():
    people = [UserFactory() for _ in range(3)]
    for person in people:
        unhealthy_month(person, days=4)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE users_profile SET timezone = %s WHERE user_id = %s", ["Mars/Olympus", people[1].pk]
        )
    with pytest.raises(CommandError, match=f": {people[1].pk}$"):
        run()
    assert set(HealthInsight.objects.values_list("user_id", flat=True)) == {people[0].pk, people[2].pk}


def test_yesterdays_insights_stay_when_others_are_a_day_behind():
    # At 01:00 UTC it is already tomorrow in Tokyo and still today in Los Angeles.
    moment = datetime.datetime(2026, 3, 11, 1, 0, tzinfo=datetime.UTC)
    tokyo = UserFactory(profile__timezone="Asia/Tokyo")
    los_angeles = UserFactory(profile__timezone="America/Los_Angeles")
    yesterday_in_tokyo = HealthInsight.objects.create(
        user=tokyo, code="low_steps", title="Move", insight_date=datetime.date(2026, 3, 10)
    )
    result = services.insights_compute_batch(user_ids=[tokyo.pk, los_angeles.pk], now=moment)
    assert result.removed == 0
    assert HealthInsight.objects.filter(pk=yesterday_in_tokyo.pk).exists()
    days = dict(HealthInsight.objects.filter(code="missing_data").values_list("user_id", "insight_date"))
    assert days == {tokyo.pk: datetime.date(2026, 3, 11), los_angeles.pk: datetime.date(2026, 3, 10)}
