"""A patient with a month of data, shared by the admin console tests."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from goals.tests.factories import HealthGoalFactory, WeightLossGoalFactory
from insights.tests.factories import HealthInsightFactory
from metrics.models import HealthMetric
from nutrition.tests.factories import NutritionLogFactory, WaterLogFactory
from users.tests.factories import CareTeamMembershipFactory, ClinicianFactory, UserFactory

# Days (counting back from today, 0 = today) with data in the patient's month.
STEP_DAYS = list(range(0, 30, 1))  # every day
SLEEP_DAYS = list(range(1, 30, 2))  # every other night
WEIGHT_DAYS = [1, 8, 15, 22, 29]
BP_DAYS = [2, 9, 16]


def _at(days_ago: int, hour: int) -> datetime.datetime:
    """A time ``days_ago`` local days back in Europe/Paris at ``hour`` (stays that local day)."""
    zone = datetime.timezone(datetime.timedelta(hours=1))
    day = timezone.localtime(timezone.now(), zone).date() - datetime.timedelta(days=days_ago)
    return datetime.datetime.combine(day, datetime.time(hour), tzinfo=zone)


@pytest.fixture
def patient_with_month(db):
    patient = UserFactory(
        username="pat_month",
        first_name="Pat",
        last_name="Month",
        profile__timezone="Europe/Paris",
        profile__medical_history="Type 2 diabetes; metformin",
    )
    rows = []
    for days_ago in STEP_DAYS:
        # Two chunks a day: the chart shows the daily sum, one point per day.
        rows += [
            HealthMetric(user=patient, metric_type="steps", value=2000 + 50 * days_ago, unit="count",
                         recorded_at=_at(days_ago, 9)),
            HealthMetric(user=patient, metric_type="steps", value=1500, unit="count",
                         recorded_at=_at(days_ago, 18)),
        ]  # fmt: skip
    for days_ago in SLEEP_DAYS:
        rows.append(
            HealthMetric(user=patient, metric_type="sleep", value=6.0, unit="h", recorded_at=_at(days_ago, 7))
        )
    for days_ago in WEIGHT_DAYS:
        rows.append(
            HealthMetric(user=patient, metric_type="weight", value=90 - days_ago / 10, unit="kg",
                         recorded_at=_at(days_ago, 8))
        )  # fmt: skip
    for days_ago in BP_DAYS:
        rows.append(
            HealthMetric(user=patient, metric_type="blood_pressure", value=142, secondary_value=91,
                         unit="mmHg", recorded_at=_at(days_ago, 10))
        )  # fmt: skip
    HealthMetric.objects.bulk_create(rows)
    for days_ago in range(0, 30, 3):
        NutritionLogFactory(user=patient, calories=2100, logged_at=_at(days_ago, 13))
        WaterLogFactory(user=patient, water_ml=1200, logged_at=_at(days_ago, 15))
    WeightLossGoalFactory(user=patient, title="Reach 80 kg", current_value=88.0, priority="high")
    HealthGoalFactory(user=patient, title="Meditate 10 sessions", current_value=4.0)
    HealthInsightFactory(user=patient, title="Walk more", is_read=False)
    HealthInsightFactory(user=patient, title="Already seen", is_read=True)
    return patient


@pytest.fixture
def care_clinician(patient_with_month):
    clinician = ClinicianFactory(username="dr_care", first_name="Casey", last_name="Care")
    CareTeamMembershipFactory(patient=patient_with_month, clinician=clinician)
    return clinician


from healthtrack.tests.browser_fixtures import browser, page, screenshot  # noqa: E402, F401  (fixtures)
