"""Query parameters of the exports, and the documented shapes of what they return.

The export bodies are written by interop.services straight from database rows (they are
streamed); the response serializers here describe them for the OpenAPI schema, and the
tests check the documents against that schema.
"""

from __future__ import annotations

import re
from datetime import date, datetime

from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from metrics.registry import METRIC_TYPE_CHOICES
from users.serializers import UserProfileSerializer

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_BOUND_HELP = (
    "An ISO 8601 date-time with offset (2024-05-01T08:00:00+02:00), or a date (2024-05-01) "
    "meaning that local day of the person. A time without offset is the person's local time."
)


@extend_schema_field(
    {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}]}
)
class DateOrDateTimeField(serializers.Field):
    """A query bound: an ISO 8601 date-time (aware or naive) or a date."""

    default_error_messages = {
        "invalid": (
            "Enter an ISO 8601 date-time with offset (2024-05-01T08:00:00+02:00) or a date (2024-05-01)."
        ),
    }

    def to_internal_value(self, data) -> date | datetime:
        if not isinstance(data, str):
            self.fail("invalid")
        text = data.strip().upper()  # RFC 3339 allows a lower-case "t" and "z"
        try:
            # A bare date first: parse_datetime would read it as midnight.
            parsed = parse_date(text) if _DATE_ONLY.match(text) else parse_datetime(text)
        except ValueError:
            parsed = None
        if parsed is None:
            self.fail("invalid")
        return parsed

    def to_representation(self, value):
        return value.isoformat()


class FhirExportQuerySerializer(serializers.Serializer):
    since = DateOrDateTimeField(
        required=False, help_text=f"Only metrics recorded at or after this. {_BOUND_HELP}"
    )
    until = DateOrDateTimeField(
        required=False,
        help_text=f"Only metrics recorded before this (a date includes that whole day). {_BOUND_HELP}",
    )


# --- Documented response shapes -------------------------------------------------------


class FhirBundleEntrySerializer(serializers.Serializer):
    fullUrl = serializers.CharField(help_text="urn:uuid of the resource, stable across exports.")
    resource = serializers.JSONField(help_text="A FHIR R4 Patient (first entry) or Observation.")


class FhirBundleSerializer(serializers.Serializer):
    resourceType = serializers.ChoiceField(choices=["Bundle"])
    id = serializers.CharField()
    type = serializers.ChoiceField(choices=["collection"])
    timestamp = serializers.CharField(help_text="When the bundle was assembled (ISO 8601 instant).")
    entry = FhirBundleEntrySerializer(many=True)


class ExportMetricSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    user_id = serializers.IntegerField()
    metric_type = serializers.ChoiceField(choices=METRIC_TYPE_CHOICES)
    value = serializers.FloatField()
    secondary_value = serializers.FloatField(allow_null=True)
    unit = serializers.CharField()
    recorded_at = serializers.DateTimeField()
    source = serializers.CharField()
    external_id = serializers.CharField(allow_null=True)
    notes = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()


class ExportNutritionLogSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    user_id = serializers.IntegerField()
    meal_type = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    calories = serializers.FloatField(allow_null=True)
    protein_g = serializers.FloatField(allow_null=True)
    carbs_g = serializers.FloatField(allow_null=True)
    fat_g = serializers.FloatField(allow_null=True)
    water_ml = serializers.FloatField(allow_null=True)
    logged_at = serializers.DateTimeField()
    source = serializers.CharField()
    external_id = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()


class ExportGoalSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    user_id = serializers.IntegerField()
    goal_type = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    metric_type = serializers.CharField(allow_blank=True)
    start_value = serializers.FloatField(allow_null=True)
    current_value = serializers.FloatField(allow_null=True)
    target_value = serializers.FloatField()
    unit = serializers.CharField(allow_blank=True)
    priority = serializers.CharField()
    status = serializers.CharField()
    target_date = serializers.DateField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ExportInsightSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    user_id = serializers.IntegerField()
    code = serializers.CharField()
    category = serializers.CharField(allow_blank=True)
    title = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    reasoning = serializers.CharField(allow_blank=True)
    action_steps = serializers.JSONField()
    evidence = serializers.JSONField()
    severity = serializers.CharField()
    score = serializers.FloatField()
    rank = serializers.IntegerField(allow_null=True)
    related_metric_type = serializers.CharField(allow_blank=True)
    insight_date = serializers.DateField()
    is_read = serializers.BooleanField()
    read_at = serializers.DateTimeField(allow_null=True)
    created_by_id = serializers.IntegerField(
        allow_null=True, help_text="The clinician or staff member who wrote it; null for the engine."
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ExportCareTeamSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    role = serializers.ChoiceField(
        choices=["patient", "clinician"], help_text="The person's side of the membership."
    )
    patient_id = serializers.IntegerField()
    clinician_id = serializers.IntegerField()
    clinician_username = serializers.CharField()
    clinician_first_name = serializers.CharField(allow_blank=True)
    clinician_last_name = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()


class ExportAuditEventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    timestamp = serializers.DateTimeField()
    actor_id = serializers.IntegerField(allow_null=True)
    actor_username = serializers.CharField(allow_null=True)
    action = serializers.CharField()
    resource_type = serializers.CharField()
    object_ids = serializers.ListField(child=serializers.CharField())
    method = serializers.CharField(allow_blank=True)
    path = serializers.CharField(allow_blank=True)
    status = serializers.IntegerField(allow_null=True)
    ip = serializers.CharField(
        allow_null=True, help_text="Only for the person's own actions; null where someone else acted."
    )
    user_agent = serializers.CharField(allow_null=True, allow_blank=True, help_text="As ip.")
    request_id = serializers.CharField(allow_blank=True)


class ExportAccountSerializer(serializers.Serializer):
    is_active = serializers.BooleanField()
    last_login = serializers.DateTimeField(allow_null=True)
    deactivated_at = serializers.DateTimeField(allow_null=True)
    roles = serializers.ListField(child=serializers.CharField())


class PersonalExportSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=["healthtrack.personal-data-export"])
    version = serializers.IntegerField()
    generated_at = serializers.DateTimeField()
    user_id = serializers.IntegerField()
    profile = UserProfileSerializer()
    account = ExportAccountSerializer()
    health_metrics = ExportMetricSerializer(many=True)
    nutrition_logs = ExportNutritionLogSerializer(many=True)
    health_goals = ExportGoalSerializer(many=True)
    health_insights = ExportInsightSerializer(many=True)
    care_team = ExportCareTeamSerializer(many=True)
    audit_events = ExportAuditEventSerializer(many=True)
