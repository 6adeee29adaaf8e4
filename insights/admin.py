from django.contrib import admin

from insights.models import HealthInsight


@admin.register(HealthInsight)
class HealthInsightAdmin(admin.ModelAdmin):
    list_display = (
        "user",
        "code",
        "title",
        "severity",
        "rank",
        "score",
        "insight_date",
        "is_read",
        "created_by",
        "created_at",
    )
    list_filter = ("severity", "is_read", "code", "category", ("insight_date", admin.DateFieldListFilter))
    search_fields = ("user__username", "user__email", "code", "title")
    raw_id_fields = ("user", "created_by")
    list_select_related = ("user", "created_by")
    readonly_fields = ("read_at", "created_at", "updated_at")
    date_hierarchy = "insight_date"
    ordering = ("-created_at", "-id")
    show_full_result_count = False
