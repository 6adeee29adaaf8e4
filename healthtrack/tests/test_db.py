import datetime
from unittest import mock

import pytest
from django.db.models import Count
from django.db.models.sql.query import Query

from healthtrack.db import local_date
from metrics.models import HealthMetric
from users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_local_date_buckets_each_user_in_their_own_zone():
    """04:30 UTC is still 'yesterday' in Los Angeles and already 13:30 in Tokyo."""
    la = UserFactory(profile__timezone="America/Los_Angeles")
    tokyo = UserFactory(profile__timezone="Asia/Tokyo")
    moment = datetime.datetime(2026, 3, 10, 4, 30, tzinfo=datetime.UTC)
    late = datetime.datetime(2026, 3, 10, 16, 30, tzinfo=datetime.UTC)
    for user in (la, tokyo):
        for at in (moment, late):
            HealthMetric.objects.create(
                user=user, metric_type="steps", value=100, unit="count", recorded_at=at
            )

    rows = (
        HealthMetric.objects.annotate(day=local_date("recorded_at"))
        .values("user_id", "day")
        .annotate(n=Count("id"))
        .order_by("user_id", "day")
    )
    got = {(row["user_id"], row["day"]): row["n"] for row in rows}
    assert got == {
        (la.pk, datetime.date(2026, 3, 9)): 1,
        (la.pk, datetime.date(2026, 3, 10)): 1,
        (tokyo.pk, datetime.date(2026, 3, 10)): 1,
        (tokyo.pk, datetime.date(2026, 3, 11)): 1,
    }


def test_local_date_with_explicit_zone():
    user = UserFactory()
    HealthMetric.objects.create(
        user=user, metric_type="steps", value=1, unit="count",
        recorded_at=datetime.datetime(2026, 1, 1, 23, 30, tzinfo=datetime.UTC),
    )  # fmt: skip
    day = HealthMetric.objects.annotate(day=local_date("recorded_at", "Europe/Berlin")).get().day
    assert day == datetime.date(2026, 1, 2)


# --- compiled_sql --------------------------------------------------------------------


def _window(*, user_ids, types, since, until, tz):
    return (
        HealthMetric.objects.filter(
            user_id__in=user_ids, metric_type__in=types, recorded_at__gte=since, recorded_at__lt=until
        )
        .annotate(day=local_date("recorded_at", tz))
        .values("user_id", "day")
        .annotate(n=Count("id"))
        .order_by("user_id", "day")
    )


def _arguments(offset: int, *, users: int = 2, types=("steps", "heart_rate")) -> dict:
    since = datetime.datetime(2026, 3, 1, tzinfo=datetime.UTC) + datetime.timedelta(days=offset)
    return {
        "user_ids": [100 + offset + i for i in range(users)],
        "types": list(types),
        "since": since,
        "until": since + datetime.timedelta(days=30),
        "tz": ["UTC", "Asia/Tokyo", "America/Los_Angeles"][offset % 3],
    }


def test_compiled_sql_gives_the_orms_sql_and_parameters_for_any_values():
    from healthtrack import db

    db._compiled_queries.clear()
    for offset in range(4):
        arguments = _arguments(offset)
        expected_sql, expected_params = _window(**arguments).query.sql_with_params()
        sql, params = db.compiled_sql("test.window", _window, **arguments)
        assert (sql, params) == (expected_sql, list(expected_params))


def test_one_compilation_per_shape():
    from healthtrack import db

    db._compiled_queries.clear()
    db.compiled_sql("test.window", _window, **_arguments(0))
    with mock.patch.object(
        Query, "sql_with_params", autospec=True, side_effect=Query.sql_with_params
    ) as compile_:
        db.compiled_sql("test.window", _window, **_arguments(1))
    cacheable = db._compiled_queries[next(iter(db._compiled_queries))] is not None
    assert compile_.called is not cacheable  # compiled again only where it cannot be kept
    db.compiled_sql("test.window", _window, **_arguments(0, users=3))  # another list length
    db.compiled_sql("test.window", _window, **_arguments(0, types=("steps",)))
    assert len(db._compiled_queries) == 3


def test_on_postgresql_every_value_becomes_a_parameter(django_db_blocker):
    from django.db import connection

    from healthtrack import db

    db._compiled_queries.clear()
    db.compiled_sql("test.window", _window, **_arguments(0))
    (template,) = db._compiled_queries.values()
    # SQLite adapts datetimes to text while compiling, so its shapes are never kept.
    assert (template is not None) is (connection.vendor == "postgresql")


def test_a_query_whose_values_shape_the_sql_is_not_kept():
    from healthtrack import db

    def by_name(*, name):
        # The value decides the SQL: a shape that must never be reused.
        return HealthMetric.objects.filter(**{name: 1}).values("id")

    db._compiled_queries.clear()
    first = db.compiled_sql("test.by_name", by_name, name="value")
    second = db.compiled_sql("test.by_name", by_name, name="user_id")
    assert first == (by_name(name="value").query.sql_with_params()[0], [1])
    assert second[0] == by_name(name="user_id").query.sql_with_params()[0]


def test_long_lists_and_many_stand_ins_are_compiled_by_the_orm():
    """A batch job's thousands of ids: no shape kept per length, no stand-in out of range."""
    from healthtrack import db

    db._compiled_queries.clear()
    arguments = _arguments(0, users=db.COMPILED_LIST_MAX + 1)
    assert db.compiled_sql("test.window", _window, **arguments)[1] == list(
        _window(**arguments).query.sql_with_params()[1]
    )
    assert db._compiled_queries == {}
    many = _arguments(0, users=db.COMPILED_LIST_MAX)
    db.compiled_sql("test.window", _window, **many)  # 50 int stand-ins before the datetimes
    assert db._marker(datetime.datetime(2026, 1, 1), 20_000).year == 1000
    assert db._marker(datetime.date(2026, 1, 1), 20_000).year < 1100
