"""Admin pieces every app uses: care-team scoping and auditing of what staff open."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from healthtrack.audit import audit_deny, audit_set
from healthtrack.cache import user_data_version_bump
from healthtrack.models import AuditAction, AuditEvent
from healthtrack.permissions import is_admin, is_clinician


def patient_ids_in_scope(request) -> set[int] | None:
    """Patients the staff member may see in the admin; None means everyone (superuser).

    Cached on the request: a changelist asks several times (rows, filters, counts).
    """
    if is_admin(request.user):
        return None
    cached = getattr(request, "_patient_ids_in_scope", None)
    if cached is None:
        from users.selectors import patient_ids_of

        cached = patient_ids_of(clinician_id=request.user.pk) if is_clinician(request.user) else set()
        request._patient_ids_in_scope = cached
    return cached


class AuditedAdminMixin:
    """Writes one audit row for every list, object, history or delete page opened.

    ``audit_resource_type`` names the resource; ``audit_subject_field`` is the path from
    the object to the person whose data it is (empty for a user's own row).
    """

    audit_resource_type = "record"
    audit_subject_field = "user_id"

    def _subject_of(self, obj) -> int | None:
        if obj is None:
            return None
        return getattr(obj, self.audit_subject_field) if self.audit_subject_field else obj.pk

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None:
            rows = list(changelist.result_list)
            subjects = {self._subject_of(obj) for obj in rows}
            audit_set(
                request,
                action=AuditAction.READ,
                resource_type=self.audit_resource_type,
                subject_id=subjects.pop() if len(subjects) == 1 else None,
                object_ids=[obj.pk for obj in rows],
            )
        return response

    def _audit_object(self, request, object_id, action) -> None:
        obj = self.get_object(request, object_id)
        if obj is None:
            self._audit_refusal(request, object_id)
            return
        audit_set(
            request,
            action=action,
            resource_type=self.audit_resource_type,
            subject_id=self._subject_of(obj),
            object_ids=[obj.pk],
        )

    def _audit_refusal(self, request, object_id) -> None:
        """An object outside the staff member's scope (or absent): record who tried."""
        try:
            row = self.model._default_manager.filter(pk=object_id).first()
        except (ValueError, ValidationError):
            row = None
        if row is not None:
            audit_deny(
                request,
                resource_type=self.audit_resource_type,
                subject_id=self._subject_of(row),
                object_ids=[row.pk],
            )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        action = AuditAction.UPDATE if request.method == "POST" else AuditAction.READ
        self._audit_object(request, object_id, action)
        return super().change_view(request, object_id, form_url, extra_context)

    def history_view(self, request, object_id, extra_context=None):
        self._audit_object(request, object_id, AuditAction.READ)
        return super().history_view(request, object_id, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        action = AuditAction.DELETE if request.method == "POST" else AuditAction.READ
        self._audit_object(request, object_id, action)
        return super().delete_view(request, object_id, extra_context)

    def add_view(self, request, form_url="", extra_context=None):
        response = super().add_view(request, form_url, extra_context)
        if request.method == "POST":
            audit_set(request, action=AuditAction.CREATE, resource_type=self.audit_resource_type)
        return response


class PatientScopedAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """A health-data admin: clinicians see only their care-team patients' rows,
    everywhere the admin looks things up (changelist, search, filters, autocomplete,
    object URLs typed by hand, which then answer "doesn't exist"); superusers see all;
    any other staff member sees nothing."""

    patient_field = "user"

    def get_queryset(self, request) -> QuerySet:
        queryset = super().get_queryset(request)
        patient_ids = patient_ids_in_scope(request)
        if patient_ids is None:
            return queryset
        return queryset.filter(**{f"{self.patient_field}__in": patient_ids})


class DataVersionAdminMixin:
    """Saving or deleting a person's rows here makes their cached reads fresh, as the
    API's writes do (``user_data_version_bump``)."""

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        user_data_version_bump(user_id=obj.user_id)

    def delete_model(self, request, obj):
        user_id = obj.user_id
        super().delete_model(request, obj)
        user_data_version_bump(user_id=user_id)

    def delete_queryset(self, request, queryset):
        user_ids = set(queryset.values_list("user_id", flat=True))
        super().delete_queryset(request, queryset)
        for user_id in user_ids:
            user_data_version_bump(user_id=user_id)


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
