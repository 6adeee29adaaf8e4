"""The summary's queries compiled once per shape give what the ORM gives."""

from __future__ import annotations

import datetime

import pytest

from metrics import selectors
from metrics.tests.factories import BloodPressureFactory, HealthMetricFactory

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2026, 3, 10, 18, 30, tzinfo=datetime.UTC)


@pytest.fixture
def week_of_samples(user, other_user):
    for day in range(7):
        moment = NOW - datetime.timedelta(days=day, hours=day)
        HealthMetricFactory(user=user, metric_type="steps", value=4000 + day, recorded_at=moment)
        HealthMetricFactory(user=user, metric_type="steps", value=100, recorded_at=moment.replace(hour=2))
        HealthMetricFactory(
            user=user, metric_type="weight", value=70 + day / 10, unit="kg", recorded_at=moment
        )
        BloodPressureFactory(
            user=user, value=120 + day, recorded_at=moment + datetime.timedelta(microseconds=7)
        )
        HealthMetricFactory(user=other_user, metric_type="steps", value=1, recorded_at=moment)


@pytest.mark.parametrize("tz", ["UTC", "Asia/Tokyo", "America/Los_Angeles"])
@pytest.mark.parametrize("types", [["steps"], ["blood_pressure", "steps", "weight"]])
def test_daily_series_rows_are_the_orms(user, week_of_samples, tz, types):
    arguments = {
        "user_id": user.pk,
        "metric_types": types,
        "since": NOW - datetime.timedelta(days=10),
        "until": NOW + datetime.timedelta(days=1),
        "tz": tz,
    }
    rows = selectors._daily_series_dicts(arguments)
    assert rows and rows == list(selectors._daily_series_rows(**arguments))
    again = selectors._daily_series_dicts({**arguments, "since": NOW - datetime.timedelta(days=3)})
    assert again == list(
        selectors._daily_series_rows(**{**arguments, "since": NOW - datetime.timedelta(days=3)})
    )
