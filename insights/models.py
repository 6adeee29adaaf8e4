"""Insights: recommendations stored for a person, by the engine or by a clinician."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Severity(models.TextChoices):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class HealthInsight(models.Model):
    """An explained recommendation. Engine-made insights (``created_by`` empty) are
    unique per (user, code, insight_date), which makes compute_insights idempotent."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="health_insights"
    )
    code = models.CharField(max_length=64)
    category = models.CharField(max_length=32, blank=True, default="")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    reasoning = models.TextField(blank=True, default="")
    action_steps = models.JSONField(default=list, blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.LOW)
    score = models.FloatField(default=0)
    rank = models.PositiveSmallIntegerField(null=True, blank=True)
    related_metric_type = models.CharField(max_length=32, blank=True, default="")
    insight_date = models.DateField(help_text="The person's local day it was computed for.")
    is_read = models.BooleanField(default=False)
    read_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="authored_insights",
        help_text="The clinician or staff member who wrote it; empty for the engine.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # In the list's exact order (id breaks ties): a page comes straight off the index.
            models.Index(fields=["user", "-created_at", "-id"], name="insight_user_time"),
            models.Index(fields=["user", "is_read", "-created_at", "-id"], name="insight_user_read_time"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "code", "insight_date"],
                condition=models.Q(created_by__isnull=True),
                name="insight_engine_unique_per_day",
            ),
            models.CheckConstraint(
                condition=models.Q(rank__isnull=True) | models.Q(rank__gte=1, rank__lte=5),
                name="insight_rank_1_to_5",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} for {self.user_id} on {self.insight_date}"
