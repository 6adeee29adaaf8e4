"""Factories for the rows an export reads (the owning apps' factories may not exist yet)."""

from __future__ import annotations

import datetime

import factory

from goals.models import HealthGoal
from healthtrack.models import AuditEvent
from insights.models import HealthInsight
from metrics.models import HealthMetric
from nutrition.models import NutritionLog
from users.tests.factories import UserFactory

BASE_TIME = datetime.datetime(2024, 3, 1, 8, 0, tzinfo=datetime.UTC)

# One plausible sample per metric type, in the canonical unit.
SAMPLE_VALUES = {
    "heart_rate": (72.0, None, "bpm"),
    "resting_heart_rate": (58.0, None, "bpm"),
    "steps": (8432.0, None, "count"),
    "sleep": (7.25, None, "h"),
    "weight": (68.4, None, "kg"),
    "blood_pressure": (121.0, 79.0, "mmHg"),
    "blood_glucose": (96.0, None, "mg/dL"),
    "exercise": (35.0, None, "min"),
    "oxygen_saturation": (97.5, None, "%"),
    "body_temperature": (36.7, None, "°C"),
}


class HealthMetricFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = HealthMetric

    user = factory.SubFactory(UserFactory)
    metric_type = "heart_rate"
    value = factory.LazyAttribute(lambda o: SAMPLE_VALUES[o.metric_type][0])
    secondary_value = factory.LazyAttribute(lambda o: SAMPLE_VALUES[o.metric_type][1])
    unit = factory.LazyAttribute(lambda o: SAMPLE_VALUES[o.metric_type][2])
    recorded_at = factory.Sequence(lambda n: BASE_TIME + datetime.timedelta(minutes=n))
    source = "manual"


class NutritionLogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = NutritionLog

    user = factory.SubFactory(UserFactory)
    meal_type = "lunch"
    description = "Lentil soup"
    calories = 420.0
    protein_g = 21.0
    carbs_g = 55.0
    fat_g = 9.0
    logged_at = BASE_TIME


class HealthGoalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = HealthGoal

    user = factory.SubFactory(UserFactory)
    goal_type = "step_count"
    title = "Walk 10,000 steps a day"
    metric_type = "steps"
    start_value = 6000.0
    current_value = 8000.0
    target_value = 10000.0
    unit = "count"
    target_date = datetime.date(2024, 6, 1)


class HealthInsightFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = HealthInsight

    user = factory.SubFactory(UserFactory)
    code = "low_steps"
    category = "activity"
    title = "Move a little more"
    description = "Your daily steps are below 5,000."
    reasoning = "Average of 4,120 steps over 30 days."
    action_steps = factory.LazyFunction(lambda: ["Take a 10-minute walk after lunch."])
    evidence = factory.LazyFunction(lambda: {"average_steps": 4120, "days": 30})
    severity = "medium"
    score = 0.6
    rank = 1
    related_metric_type = "steps"
    insight_date = datetime.date(2024, 3, 1)


class AuditEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AuditEvent

    action = "read"
    resource_type = "metric"
    method = "GET"
    path = "/api/v1/health-metrics/user/1"
    status = 200
    ip = "203.0.113.7"
    user_agent = "Tests/1.0"
    request_id = factory.Sequence(lambda n: f"req-{n}")
