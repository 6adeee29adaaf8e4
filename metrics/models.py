"""Health metrics: one row per sample, in the canonical unit of its type."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from metrics.registry import METRIC_TYPE_CHOICES


class Source(models.TextChoices):
    MANUAL = "manual", "Entered by hand"
    APPLE_HEALTH = "apple_health", "Apple Health"
    GOOGLE_FIT = "google_fit", "Google Fit"
    FITBIT = "fitbit", "Fitbit"
    GARMIN = "garmin", "Garmin"
    WITHINGS = "withings", "Withings"
    DEVICE = "device", "Other device"
    FHIR = "fhir", "FHIR import"
    DEMO = "demo", "Demo data"


class HealthMetric(models.Model):
    """One sample. ``value`` is in ``unit``, the canonical unit of ``metric_type``;
    blood pressure keeps systolic in ``value`` and diastolic in ``secondary_value``.
    ``(user, source, external_id)`` is unique when the client gives its own id, which
    is what makes syncing idempotent."""

    # No index of its own: every index below starts with the user.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="health_metrics", db_index=False
    )
    metric_type = models.CharField(max_length=32, choices=METRIC_TYPE_CHOICES)
    value = models.FloatField()
    secondary_value = models.FloatField(null=True, blank=True)
    unit = models.CharField(max_length=16)
    recorded_at = models.DateTimeField()
    source = models.CharField(max_length=32, choices=Source.choices, default=Source.MANUAL)
    external_id = models.CharField(max_length=128, null=True, blank=True)
    notes = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-recorded_at", "-id"]
        indexes = [
            # In the lists' exact order (id breaks ties), so a page is read straight off
            # the index instead of sorting all of a person's samples.
            models.Index(fields=["user", "metric_type", "-recorded_at", "-id"], name="metric_user_type_time"),
            models.Index(fields=["user", "-recorded_at", "-id"], name="metric_user_time"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "source", "external_id"],
                condition=models.Q(external_id__isnull=False),
                name="metric_unique_external_id",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.metric_type} {self.value:g} {self.unit} @ {self.recorded_at:%Y-%m-%d %H:%M}"
