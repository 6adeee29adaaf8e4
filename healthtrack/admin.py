from django.contrib import admin

from healthtrack.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only for everyone, superusers included: the trail is append-only."""

    list_display = ("timestamp", "action", "resource_type", "actor", "subject", "status", "ip", "path")
    list_filter = ("action", "resource_type", ("timestamp", admin.DateFieldListFilter))
    search_fields = ("actor__username", "actor__email", "subject__username", "subject__email", "request_id")
    date_hierarchy = "timestamp"
    list_select_related = ("actor", "subject")
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
