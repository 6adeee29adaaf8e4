from __future__ import annotations

import datetime

import factory
from django.utils import timezone

from goals.models import GoalStatus, GoalType, HealthGoal, Priority
from metrics.models import HealthMetric
from metrics.registry import METRIC_TYPES


class HealthGoalFactory(factory.django.DjangoModelFactory):
    """A goal that follows no data; pass metric_type/unit for a linked one."""

    class Meta:
        model = HealthGoal

    user = factory.SubFactory("users.tests.factories.UserFactory")
    goal_type = GoalType.CUSTOM
    title = factory.Sequence(lambda n: f"Goal {n}")
    description = ""
    metric_type = ""
    start_value = 0.0
    current_value = 2.0
    target_value = 10.0
    unit = "sessions"
    priority = Priority.MEDIUM
    status = GoalStatus.ACTIVE


class WeightLossGoalFactory(HealthGoalFactory):
    goal_type = GoalType.WEIGHT_LOSS
    title = "Lose 10 kg"
    metric_type = "weight"
    start_value = 90.0
    current_value = 90.0
    target_value = 80.0
    unit = "kg"


def record_metric(user, metric_type: str, value: float, recorded_at=None, **fields) -> HealthMetric:
    """A stored sample in the type's canonical unit (metrics factories live on the metrics
    branch; goals only need rows to follow)."""
    return HealthMetric.objects.create(
        user=user,
        metric_type=metric_type,
        value=value,
        unit=METRIC_TYPES[metric_type].canonical_unit,
        recorded_at=recorded_at or timezone.now() - datetime.timedelta(minutes=1),
        **fields,
    )
