from django.contrib import admin
from django.utils import timezone

from goals.models import GoalStatus, HealthGoal
from goals.services import goal_progress_of
from healthtrack.admin import DataVersionAdminMixin, PatientScopedAdmin


@admin.register(HealthGoal)
class HealthGoalAdmin(DataVersionAdminMixin, PatientScopedAdmin):
    audit_resource_type = "goal"
    list_display = (
        "title",
        "user",
        "goal_type",
        "metric_type",
        "current_value",
        "target_value",
        "unit",
        "progress",
        "status",
        "priority",
        "target_date",
        "created_at",
    )
    list_filter = ("goal_type", "status", "priority", "metric_type")
    date_hierarchy = "created_at"
    search_fields = ("user__email", "user__username", "title")
    raw_id_fields = ("user",)
    list_select_related = ("user",)
    ordering = ("-created_at", "-id")
    show_full_result_count = False

    @admin.display(description="progress %")
    def progress(self, goal: HealthGoal):
        return goal_progress_of(goal)

    def get_readonly_fields(self, request, obj=None):
        readonly = ["completed_at", "created_at", "updated_at"]
        if obj is not None:
            # What a goal measures and where it started are its history (as in the API).
            readonly += ["user", "goal_type", "metric_type", "start_value", "unit"]
            if obj.metric_type:
                readonly.append("current_value")  # follows the person's data
        return readonly

    def save_model(self, request, obj, form, change):
        if "status" in form.changed_data:  # as in the API: completing stamps, reopening clears
            obj.completed_at = timezone.now() if obj.status == GoalStatus.COMPLETED else None
        super().save_model(request, obj, form, change)
