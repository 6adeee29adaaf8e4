"""Goals: a target for a person, optionally following one of their metric types."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from metrics.registry import METRIC_TYPE_CHOICES


class GoalType(models.TextChoices):
    WEIGHT_LOSS = "weight_loss"
    WEIGHT_GAIN = "weight_gain"
    BETTER_SLEEP = "better_sleep"
    MORE_EXERCISE = "more_exercise"
    STEP_COUNT = "step_count"
    STRESS_REDUCTION = "stress_reduction"
    BETTER_NUTRITION = "better_nutrition"
    HYDRATION = "hydration"
    CUSTOM = "custom"


class Priority(models.TextChoices):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class GoalStatus(models.TextChoices):
    ACTIVE = "active"
    COMPLETED = "completed"
    ABANDONED = "abandoned"


class HealthGoal(models.Model):
    """``progress_percent`` is derived (goals.services.goal_progress_percent), never stored.
    With ``metric_type`` set, ``current_value`` follows the person's data."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="health_goals")
    goal_type = models.CharField(max_length=32, choices=GoalType.choices)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    metric_type = models.CharField(max_length=32, choices=METRIC_TYPE_CHOICES, blank=True, default="")
    start_value = models.FloatField(null=True, blank=True)
    current_value = models.FloatField(null=True, blank=True)
    target_value = models.FloatField()
    unit = models.CharField(max_length=16, blank=True, default="")
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.MEDIUM)
    status = models.CharField(max_length=16, choices=GoalStatus.choices, default=GoalStatus.ACTIVE)
    target_date = models.DateField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "status", "-created_at"], name="goal_user_status_time"),
            models.Index(fields=["user", "metric_type"], name="goal_user_metric"),
        ]

    def __str__(self) -> str:
        return self.title
