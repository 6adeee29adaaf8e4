"""Request and response bodies for goals. The rules live in goals.services."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from goals.models import GoalStatus, GoalType, HealthGoal, Priority
from goals.services import goal_progress_of
from healthtrack.serializers import StrictFieldsMixin, iso_datetime
from metrics.registry import METRIC_TYPE_CHOICES

TITLE_MAX_LENGTH = 200
DESCRIPTION_MAX_LENGTH = 2000
UNIT_MAX_LENGTH = 16


class _MetricTypeField(serializers.ChoiceField):
    """A metric type code, or null for a goal that follows no data (stored as "")."""

    def __init__(self, **kwargs):
        # Input also takes "" for "none"; output is always a code or null.
        kwargs.setdefault("allow_blank", not kwargs.get("read_only", False))
        super().__init__(choices=METRIC_TYPE_CHOICES, allow_null=True, **kwargs)

    def to_internal_value(self, data):
        return super().to_internal_value(data) or None

    def to_representation(self, value):
        return value or None


class HealthGoalSerializer(serializers.Serializer):
    """A goal as clients see it."""

    id = serializers.IntegerField(read_only=True)
    user_id = serializers.IntegerField(read_only=True)
    goal_type = serializers.ChoiceField(choices=GoalType.choices, read_only=True)
    title = serializers.CharField(read_only=True)
    description = serializers.CharField(read_only=True)
    metric_type = _MetricTypeField(
        read_only=True, help_text="The metric type this goal follows; null when it follows no data."
    )
    start_value = serializers.FloatField(read_only=True, allow_null=True)
    current_value = serializers.FloatField(
        read_only=True,
        allow_null=True,
        help_text="For a linked goal: the latest weight, or the 7-day average of daily totals "
        "(steps, sleep, exercise) or of samples (other types); null without data.",
    )
    target_value = serializers.FloatField(read_only=True)
    unit = serializers.CharField(read_only=True)
    progress_percent = serializers.SerializerMethodField(
        help_text="0-100 from start to target in the goal's direction (down for weight loss); "
        "100 once reached; null without a start or current value."
    )
    priority = serializers.ChoiceField(choices=Priority.choices, read_only=True)
    status = serializers.ChoiceField(choices=GoalStatus.choices, read_only=True)
    target_date = serializers.DateField(read_only=True, allow_null=True)
    completed_at = serializers.DateTimeField(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_progress_percent(self, goal: HealthGoal) -> float | None:
        return goal_progress_of(goal)


GOAL_FIELDS = (
    "id",
    "user_id",
    "goal_type",
    "title",
    "description",
    "metric_type",
    "start_value",
    "current_value",
    "target_value",
    "unit",
    "priority",
    "status",
    "target_date",
    "completed_at",
    "created_at",
    "updated_at",
)


def goal_as_dict(goal: HealthGoal) -> dict:
    """``HealthGoalSerializer(goal).data`` without building a serializer per goal
    (tests hold the two equal)."""
    row = {name: getattr(goal, name) for name in GOAL_FIELDS}
    row["metric_type"] = row["metric_type"] or None
    row["progress_percent"] = goal_progress_of(goal)
    row["target_date"] = row["target_date"].isoformat() if row["target_date"] else None
    for name in ("completed_at", "created_at", "updated_at"):
        row[name] = iso_datetime(row[name])
    return row


class HealthGoalCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    """A new goal; it starts `active`.

    With `metric_type` set, `current_value` follows the data (do not send it),
    `start_value` defaults to the current data value, `unit` defaults to the type's
    canonical unit (another accepted unit, e.g. `lb`, converts the values), and
    `target_value` must lie in the type's range.
    """

    goal_type = serializers.ChoiceField(choices=GoalType.choices)
    title = serializers.CharField(max_length=TITLE_MAX_LENGTH)
    description = serializers.CharField(max_length=DESCRIPTION_MAX_LENGTH, allow_blank=True, required=False)
    metric_type = _MetricTypeField(required=False, help_text="Link the goal to this metric type's data.")
    start_value = serializers.FloatField(allow_null=True, required=False)
    current_value = serializers.FloatField(
        allow_null=True, required=False, help_text="Only for goals without `metric_type`."
    )
    target_value = serializers.FloatField()
    unit = serializers.CharField(max_length=UNIT_MAX_LENGTH, allow_blank=True, required=False)
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)
    target_date = serializers.DateField(
        allow_null=True, required=False, help_text="Not before today (the user's local date)."
    )


class HealthGoalUpdateSerializer(StrictFieldsMixin, HealthGoalSerializer):
    """Changes to a goal.

    Editable: `title`, `description`, `current_value` (goals without `metric_type`
    only), `status`, `priority`, `target_value`, `target_date`. `goal_type`,
    `metric_type`, `start_value` and `unit` may be sent back unchanged but not changed
    (400). Status: active -> completed | abandoned, completed | abandoned -> active;
    completing sets `completed_at`, reopening clears it.
    """

    goal_type = serializers.ChoiceField(choices=GoalType.choices, required=False, help_text="Cannot change.")
    title = serializers.CharField(max_length=TITLE_MAX_LENGTH, required=False)
    description = serializers.CharField(max_length=DESCRIPTION_MAX_LENGTH, allow_blank=True, required=False)
    metric_type = _MetricTypeField(required=False, help_text="Cannot change.")
    start_value = serializers.FloatField(allow_null=True, required=False, help_text="Cannot change.")
    current_value = serializers.FloatField(
        allow_null=True, required=False, help_text="Only for goals without `metric_type`."
    )
    target_value = serializers.FloatField()
    unit = serializers.CharField(
        max_length=UNIT_MAX_LENGTH, allow_blank=True, required=False, help_text="Cannot change."
    )
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)
    status = serializers.ChoiceField(choices=GoalStatus.choices, required=False)
    target_date = serializers.DateField(allow_null=True, required=False)


class HealthGoalListQuerySerializer(serializers.Serializer):
    status_filter = serializers.ChoiceField(
        choices=GoalStatus.choices, required=False, help_text="Only goals with this status."
    )
