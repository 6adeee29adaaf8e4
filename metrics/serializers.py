"""Request and response bodies of the metrics API.

Validation of a sample is ``metrics.validation.sample_clean`` (shared with bulk ingest);
the serializers here give DRF and the OpenAPI schema the shape of each body.
Responses are plain dicts built by ``metric_as_dict`` / ``metric_row_as_dict``; a test
checks they equal ``HealthMetricSerializer`` output field for field.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework import serializers

from healthtrack.serializers import iso_datetime
from metrics.models import HealthMetric, Source
from metrics.registry import METRIC_TYPE_CHOICES, METRIC_TYPES, DailyAggregate
from metrics.validation import (
    BULK_MAX_SAMPLES,
    EXTERNAL_ID_MAX_LENGTH,
    NOTES_MAX_LENGTH,
    errors_as_dict,
    sample_clean,
)

METRIC_FIELDS = (
    "id",
    "user_id",
    "metric_type",
    "value",
    "secondary_value",
    "unit",
    "recorded_at",
    "source",
    "external_id",
    "notes",
    "created_at",
)

_UNITS_TEXT = "; ".join(
    f"{t.code}: {t.canonical_unit}"
    + (
        f" (also {', '.join(u for u in t.accepted_units() if u != t.canonical_unit)})"
        if len(t.units) > 1
        else ""
    )
    for t in METRIC_TYPES.values()
)
_RANGES_TEXT = "; ".join(
    f"{t.code} {t.min_value:g}-{t.max_value:g} {t.canonical_unit}" for t in METRIC_TYPES.values()
)


# --- Responses -----------------------------------------------------------------------


def metric_row_as_dict(row: dict[str, Any]) -> dict[str, Any]:
    """A ``.values(*METRIC_FIELDS)`` row as the API shows it (changes ``row`` in place)."""
    row["recorded_at"] = iso_datetime(row["recorded_at"])
    row["created_at"] = iso_datetime(row["created_at"])
    return row


def metric_as_dict(metric: HealthMetric) -> dict[str, Any]:
    return metric_row_as_dict({name: getattr(metric, name) for name in METRIC_FIELDS})


class HealthMetricSerializer(serializers.Serializer):
    """A stored metric sample, in the canonical unit of its type."""

    id = serializers.IntegerField(read_only=True)
    user_id = serializers.IntegerField(read_only=True, help_text="Owner of the sample.")
    metric_type = serializers.ChoiceField(choices=METRIC_TYPE_CHOICES, read_only=True)
    value = serializers.FloatField(
        read_only=True, help_text="In `unit`, the canonical unit of the type. Systolic for blood pressure."
    )
    secondary_value = serializers.FloatField(
        read_only=True, allow_null=True, help_text="Diastolic pressure for blood_pressure; null otherwise."
    )
    unit = serializers.CharField(read_only=True, help_text=f"Canonical unit of the type ({_UNITS_TEXT}).")
    recorded_at = serializers.DateTimeField(read_only=True)
    source = serializers.ChoiceField(choices=Source.choices, read_only=True)
    external_id = serializers.CharField(read_only=True, allow_null=True)
    notes = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)


# --- Requests ------------------------------------------------------------------------


class HealthMetricWriteSerializer(serializers.Serializer):
    """A metric sample as a client sends it."""

    refuses_unknown_fields = True  # sample_clean: documented as additionalProperties: false

    # Validation is metrics.validation.sample_clean (see to_internal_value); the fields
    # below describe the body for the schema. Context: "user_id" (the owner), optional
    # "now". validated_data holds the model fields, values in the canonical unit.

    metric_type = serializers.ChoiceField(choices=METRIC_TYPE_CHOICES)
    value = serializers.FloatField(
        help_text=f"In `unit`; converted to the canonical unit and checked against the range of the type "
        f"({_RANGES_TEXT}). Systolic pressure for blood_pressure."
    )
    secondary_value = serializers.FloatField(
        required=False,
        allow_null=True,
        help_text="Diastolic pressure, required for blood_pressure (30-180 mmHg, below systolic); "
        "must be null or absent for every other type.",
    )
    unit = serializers.CharField(
        required=False,
        help_text="Unit of value/secondary_value, case-insensitive; default the canonical unit. "
        f"{_UNITS_TEXT}. Stored converted to the canonical unit.",
    )
    recorded_at = serializers.DateTimeField(
        required=False,
        help_text="ISO 8601 with a UTC offset; default now; at most 5 minutes in the future.",
    )
    source = serializers.ChoiceField(
        choices=Source.choices,
        required=False,
        help_text="Where the sample comes from; default manual. Cannot change after creation.",
    )
    external_id = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=EXTERNAL_ID_MAX_LENGTH,
        help_text="The client's own id of the sample. (source, external_id) is unique per user: "
        "posting it again returns the stored sample (200). Cannot change after creation.",
    )
    notes = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, max_length=NOTES_MAX_LENGTH
    )

    def run_validation(self, data=serializers.empty):
        # sample_clean is the whole validation: skip DRF's per-field pass and the copies
        # of every field it makes (~40x the cost of the check itself on the POST path).
        return self.to_internal_value({} if data is serializers.empty else data)

    def to_internal_value(self, data):
        cleaned, errors = sample_clean(
            data,
            user_id=self.context["user_id"],
            now=self.context.get("now") or timezone.now(),
            instance=self.instance,
            partial=self.partial,
        )
        if errors:
            raise serializers.ValidationError(errors_as_dict(errors))
        return cleaned


class MetricBulkSerializer(serializers.Serializer):
    refuses_unknown_fields = True  # MetricBulkView refuses keys other than "samples"

    samples = HealthMetricWriteSerializer(
        many=True,
        max_length=BULK_MAX_SAMPLES,
        help_text=f"Up to {BULK_MAX_SAMPLES} samples, each as in POST /api/v1/health-metrics.",
    )


class MetricBulkErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the sample in `samples` (0-based).")
    field = serializers.CharField(help_text="The field at fault, or non_field_errors.")
    message = serializers.CharField()


class MetricBulkResultSerializer(serializers.Serializer):
    created = serializers.IntegerField(help_text="Samples stored by this request.")
    duplicates = serializers.IntegerField(
        help_text="Valid samples skipped because (source, external_id) was already stored, "
        "or appeared earlier in the same batch."
    )
    errors = MetricBulkErrorSerializer(
        many=True, help_text="One entry per problem; invalid samples are not stored."
    )


# --- Summary ---------------------------------------------------------------------------


class MetricStatsSerializer(serializers.Serializer):
    avg = serializers.FloatField()
    min = serializers.FloatField()
    max = serializers.FloatField()


class MetricLatestSerializer(serializers.Serializer):
    value = serializers.FloatField()
    secondary_value = serializers.FloatField(allow_null=True)
    recorded_at = serializers.DateTimeField()


class MetricDailyPointSerializer(serializers.Serializer):
    date = serializers.DateField(help_text="Local day in the user's time zone.")
    value = serializers.FloatField(
        help_text="The day as one number, by the type's daily_aggregate: sum (steps, exercise, sleep; "
        "a night counts on the local day it is recorded, i.e. the wake-up day), avg (heart rate, "
        "blood pressure, glucose, SpO2, temperature) or latest (weight)."
    )
    avg = serializers.FloatField(help_text="Mean of the day's samples.")
    min = serializers.FloatField()
    max = serializers.FloatField()
    sum = serializers.FloatField()
    count = serializers.IntegerField(help_text="Samples that day.")
    secondary = MetricStatsSerializer(
        allow_null=True, help_text="Diastolic avg/min/max of the day for blood_pressure; null otherwise."
    )


class MetricTypeSummarySerializer(serializers.Serializer):
    metric_type = serializers.ChoiceField(choices=METRIC_TYPE_CHOICES)
    unit = serializers.CharField(help_text="Canonical unit of every number here.")
    daily_aggregate = serializers.ChoiceField(choices=[(a.value, a.value) for a in DailyAggregate])
    count = serializers.IntegerField(help_text="Samples in the window.")
    days_with_data = serializers.IntegerField()
    avg = serializers.FloatField(
        help_text="For sum types (steps, exercise, sleep): mean of the daily totals over days with "
        "data (average daily steps). For the others: mean over samples."
    )
    min = serializers.FloatField(help_text="Sum types: lowest daily total. Others: lowest sample.")
    max = serializers.FloatField(help_text="Sum types: highest daily total. Others: highest sample.")
    secondary = MetricStatsSerializer(
        allow_null=True, help_text="Diastolic avg/min/max over samples for blood_pressure; null otherwise."
    )
    latest = MetricLatestSerializer(help_text="The most recent sample in the window.")
    daily = MetricDailyPointSerializer(many=True, help_text="Days with data, oldest first.")


class MetricSummarySerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    days = serializers.IntegerField()
    timezone = serializers.CharField(help_text="The user's IANA time zone: days are local days there.")
    start_date = serializers.DateField(help_text="First local day of the window.")
    end_date = serializers.DateField(help_text="Last local day of the window (today).")
    cached = serializers.BooleanField(help_text="True when served from the cache.")
    metrics = serializers.DictField(
        child=MetricTypeSummarySerializer(),
        help_text="By metric type; only types with samples in the window appear. "
        "Numbers are rounded to 2 decimals.",
    )
