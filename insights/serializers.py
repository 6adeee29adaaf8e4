"""Request and response bodies of the insights API."""

from __future__ import annotations

import orjson
from django.core.validators import RegexValidator
from rest_framework import serializers

from healthtrack.serializers import StrictFieldsMixin, unstorable_text
from insights.models import HealthInsight, Severity
from insights.services import DEFAULT_WINDOW_DAYS, MAX_WINDOW_DAYS
from metrics.registry import METRIC_TYPES

MAX_EVIDENCE_BYTES = 10_000
MAX_ACTION_STEPS = 10

code_validator = RegexValidator(
    r"^[a-z][a-z0-9_]{0,63}$", "Lowercase letters, digits and underscores, starting with a letter."
)


# --- Recommendations ----------------------------------------------------------------


class RecommendationQuerySerializer(serializers.Serializer):
    days = serializers.IntegerField(
        min_value=1,
        max_value=MAX_WINDOW_DAYS,
        default=DEFAULT_WINDOW_DAYS,
        help_text=f"Window in the person's local days, ending today (1-{MAX_WINDOW_DAYS}).",
    )
    use_cache = serializers.BooleanField(
        default=True,
        help_text="false recomputes from the data and refreshes the cached answer.",
    )


class RecommendationSerializer(serializers.Serializer):
    rank = serializers.IntegerField(min_value=1, max_value=5)
    code = serializers.CharField(
        help_text="low_steps, insufficient_sleep, elevated_resting_heart_rate, weight_management, "
        "poor_nutrition, low_water_intake, elevated_blood_pressure, elevated_blood_glucose, "
        "goal_off_track or missing_data."
    )
    title = serializers.CharField()
    category = serializers.CharField(
        help_text="activity, sleep, heart, weight, nutrition, hydration, blood_pressure, glucose, "
        "goals or tracking."
    )
    severity = serializers.ChoiceField(choices=Severity.choices)
    score = serializers.FloatField(
        help_text="Severity weight (1/2/3) x confidence (data coverage, 0-1) x relevance "
        "(1, up to 1.5 for a high-priority goal it concerns)."
    )
    reasoning = serializers.CharField(help_text="Why, with the numbers behind it, in the person's units.")
    action_steps = serializers.ListField(child=serializers.CharField())
    evidence = serializers.DictField(
        help_text='The numbers used, e.g. {"metric": "steps", "window_days": 30, "days_with_data": 24, '
        '"average": 3150, "threshold": 5000}.'
    )
    related_metric_type = serializers.CharField(allow_blank=True)


class RecommendationsResponseSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    days = serializers.IntegerField()
    generated_at = serializers.DateTimeField(help_text="When these were computed (a cached answer keeps it).")
    cached = serializers.BooleanField(help_text="True when served from the cache.")
    recommendations = RecommendationSerializer(many=True, help_text="At most five, rank 1 first.")


# --- Stored insights ----------------------------------------------------------------


class HealthInsightSerializer(serializers.ModelSerializer):
    """An insight as clients see it."""

    user_id = serializers.IntegerField(read_only=True)
    created_by = serializers.IntegerField(
        source="created_by_id",
        read_only=True,
        allow_null=True,
        help_text="The clinician or administrator who wrote it; null for the engine.",
    )
    action_steps = serializers.ListField(child=serializers.CharField(), read_only=True)
    evidence = serializers.DictField(read_only=True)

    class Meta:
        model = HealthInsight
        fields = (
            "id",
            "user_id",
            "code",
            "category",
            "title",
            "description",
            "reasoning",
            "action_steps",
            "evidence",
            "severity",
            "score",
            "rank",
            "related_metric_type",
            "insight_date",
            "is_read",
            "read_at",
            "created_by",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


class HealthInsightCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    """A clinician's or administrator's insight for a person."""

    user_id = serializers.IntegerField(min_value=1, help_text="The person it is about.")
    code = serializers.CharField(
        max_length=64,
        default="clinician_note",
        validators=[code_validator],
        help_text="Default clinician_note.",
    )
    category = serializers.CharField(max_length=32, allow_blank=True, default="")
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=5_000, allow_blank=True, default="")
    reasoning = serializers.CharField(max_length=5_000, allow_blank=True, default="")
    action_steps = serializers.ListField(
        child=serializers.CharField(max_length=500), max_length=MAX_ACTION_STEPS, default=list
    )
    evidence = serializers.DictField(
        default=dict, help_text=f"A JSON object of at most {MAX_EVIDENCE_BYTES} bytes."
    )
    severity = serializers.ChoiceField(choices=Severity.choices, default=Severity.LOW)
    rank = serializers.IntegerField(min_value=1, max_value=5, allow_null=True, default=None)
    related_metric_type = serializers.ChoiceField(
        choices=[("", "none"), *[(code, metric.label) for code, metric in METRIC_TYPES.items()]],
        allow_blank=True,
        default="",
    )
    insight_date = serializers.DateField(
        allow_null=True,
        default=None,
        help_text="The person's day it is for; default today in their time zone.",
    )

    def validate_evidence(self, value: dict) -> dict:
        # Found by fuzzing, both 500s on PostgreSQL: jsonb cannot hold NUL (and no JSON
        # text a lone surrogate); and it writes 1e20 back as the integer
        # 100000000000000000000, which the JSON renderer cannot write (64-bit at most).
        if reason := _evidence_problem(value):
            raise serializers.ValidationError(reason)
        try:
            size = len(orjson.dumps(value))
        except TypeError:
            raise serializers.ValidationError("Must be a JSON object.") from None
        if size > MAX_EVIDENCE_BYTES:
            raise serializers.ValidationError(f"At most {MAX_EVIDENCE_BYTES} bytes of JSON.")
        return value


EVIDENCE_NUMBER_LIMIT = 2**63  # what survives jsonb and the renderer, as integer or float


def _evidence_problem(value, depth: int = 0) -> str | None:
    """The first reason a key or value anywhere in ``value`` cannot be stored and read back."""
    if isinstance(value, str):
        return unstorable_text(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if abs(value) >= EVIDENCE_NUMBER_LIMIT:
            return f"Numbers must be between -{EVIDENCE_NUMBER_LIMIT:.3g} and {EVIDENCE_NUMBER_LIMIT:.3g}."
        return None
    if depth > 100:  # deeper than any evidence; the size check refuses it anyway
        return None
    if isinstance(value, dict):
        items = [*value.keys(), *value.values()]
    elif isinstance(value, list):
        items = value
    else:
        return None
    for item in items:
        if reason := _evidence_problem(item, depth + 1):
            return reason
    return None


class HealthInsightReadStateSerializer(StrictFieldsMixin, serializers.Serializer):
    """The one thing a person changes on an insight."""

    is_read = serializers.BooleanField()


class InsightListQuerySerializer(serializers.Serializer):
    is_read = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Only read (true) or unread (false) insights.",
    )
