import datetime

import pytest
from django.db.models import Count

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
