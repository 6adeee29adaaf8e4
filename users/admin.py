"""Accounts in the admin, scoped by role.

* Superusers: every account, with the profile (PHI decrypted).
* Clinicians: only their care-team patients, read-only, with the profile.
* Support (and staff without a clinical role): every account, never the profile — no
  date of birth, no medical history — with activate / deactivate / password-link actions.
"""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Iterator

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import FileResponse, StreamingHttpResponse
from django.urls import path, reverse
from django.utils.html import format_html

from healthtrack.admin import AuditedAdminMixin, patient_ids_in_scope
from healthtrack.audit import audit_set
from healthtrack.models import AuditAction
from healthtrack.permissions import is_admin, is_clinician
from users import services
from users.forms import SessionEndingAdminPasswordChangeForm
from users.models import CareTeamMembership, Profile, User
from users.selectors import user_auth_snapshot_invalidate


class ProfileInline(admin.StackedInline):
    model = Profile
    can_delete = False
    fields = ("date_of_birth", "gender", "height_cm", "occupation", "timezone", "medical_history")
    verbose_name_plural = "Profile (date of birth and medical history are encrypted at rest)"


@admin.register(User)
class UserAdmin(AuditedAdminMixin, DjangoUserAdmin):
    """Accounts in the admin; every change that ends or narrows access takes effect on
    the account's very next API request, as it does through the API."""

    audit_resource_type = "profile"
    audit_subject_field = ""  # the row is the person
    change_password_form = SessionEndingAdminPasswordChangeForm
    inlines = [ProfileInline]
    list_display = ("username", "email", "first_name", "last_name", "is_active", "is_staff", "date_joined")
    list_filter = ("is_active", "is_staff", "is_superuser", "groups")
    search_fields = ("username", "email", "first_name", "last_name")
    ordering = ("-date_joined",)
    readonly_fields = ("date_joined", "last_login", "deactivated_at")
    actions = [
        "recompute_insights",
        "export_json",
        "export_fhir",
        "deactivate_selected",
        "activate_selected",
        "password_set_links",
    ]

    # --- scope ---------------------------------------------------------------------

    def get_queryset(self, request) -> QuerySet:
        queryset = super().get_queryset(request)
        if is_clinician(request.user) and not is_admin(request.user):
            return queryset.filter(pk__in=patient_ids_in_scope(request))
        return queryset

    def sees_phi(self, request, obj=None) -> bool:
        """Superusers, and clinicians (who only ever reach their patients)."""
        return is_admin(request.user) or is_clinician(request.user)

    def get_inlines(self, request, obj):
        return [ProfileInline] if obj is not None and self.sees_phi(request, obj) else []

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None and not is_admin(request.user):
            fieldsets = [
                (name, {**options, "fields": [f for f in options["fields"] if f not in _PRIVILEGE_FIELDS]})
                for name, options in fieldsets
            ]
        return fieldsets

    def user_change_password(self, request, id, form_url=""):
        if not is_admin(request.user):
            raise PermissionDenied
        return super().user_change_password(request, id, form_url)

    # --- writes go through the services, so tokens end at once ----------------------

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data:
            # Unticking "active" is a deactivation: through the service, so the
            # account's access and refresh tokens stop working at once.
            if obj.is_active:
                services.user_reactivate(user_id=obj.pk)
            else:
                services.user_deactivate(user_id=obj.pk)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # Staff and superuser flags and groups decide what the account may do; the
        # cached authentication snapshot must not outlive a change to them.
        user_auth_snapshot_invalidate(user_id=form.instance.pk)

    def delete_model(self, request, obj):
        user_id = obj.pk
        super().delete_model(request, obj)
        user_auth_snapshot_invalidate(user_id=user_id)

    def delete_queryset(self, request, queryset):
        user_ids = list(queryset.values_list("pk", flat=True))
        super().delete_queryset(request, queryset)
        for user_id in user_ids:
            user_auth_snapshot_invalidate(user_id=user_id)

    @admin.action(description="Deactivate selected accounts (tokens end at once)", permissions=["change"])
    def deactivate_selected(self, request, queryset):
        user_ids = list(
            queryset.filter(is_active=True).exclude(pk=request.user.pk).values_list("pk", flat=True)
        )
        for user_id in user_ids:
            services.user_deactivate(user_id=user_id)
        self.message_user(request, f"Deactivated {len(user_ids)} account(s).", messages.SUCCESS)

    @admin.action(description="Activate selected accounts", permissions=["change"])
    def activate_selected(self, request, queryset):
        user_ids = list(queryset.filter(is_active=False).values_list("pk", flat=True))
        for user_id in user_ids:
            services.user_reactivate(user_id=user_id)
        self.message_user(request, f"Activated {len(user_ids)} account(s).", messages.SUCCESS)

    @admin.action(description="Create one-time password-set links", permissions=["change"])
    def password_set_links(self, request, queryset):
        for user in queryset.filter(is_active=True)[:20]:
            link = services.user_password_set_link(user=user, base_url=settings.PUBLIC_BASE_URL)
            self.message_user(
                request,
                format_html("Password-set link for {}: <code>{}</code>", user.username, link),
                messages.INFO,
            )

    # --- clinical actions (superusers and clinicians, on the patients in their scope) ---

    def has_recompute_permission(self, request) -> bool:
        return request.user.has_perm("insights.add_healthinsight")

    def has_export_permission(self, request) -> bool:
        return self.sees_phi(request) and request.user.has_perm("users.view_profile")

    @admin.action(description="Recompute insights for selected patients", permissions=["recompute"])
    def recompute_insights(self, request, queryset):
        from insights.services import insights_compute_batch

        user_ids = list(queryset.filter(is_active=True, is_staff=False).values_list("pk", flat=True))
        result = insights_compute_batch(user_ids=user_ids)
        audit_set(
            request, action=AuditAction.UPDATE, resource_type="insight",
            subject_id=user_ids[0] if len(user_ids) == 1 else None, object_ids=user_ids,
        )  # fmt: skip
        self.message_user(
            request,
            f"Recomputed insights for {len(user_ids)} patient(s): "
            f"{result.created} new, {result.updated} updated, {result.unchanged} unchanged.",
            messages.SUCCESS,
        )

    @admin.action(description="Export data of selected patients (JSON)", permissions=["export"])
    def export_json(self, request, queryset):
        return export_response(request, queryset, fmt="json")

    @admin.action(description="Export data of selected patients (FHIR R4 bundle)", permissions=["export"])
    def export_fhir(self, request, queryset):
        return export_response(request, queryset, fmt="fhir")

    # --- patient overview -------------------------------------------------------------

    def get_urls(self):
        from users.admin_overview import patient_overview_view

        custom = [
            path(
                "<int:user_id>/overview/",
                self.admin_site.admin_view(patient_overview_view(self)),
                name="users_user_overview",
            )
        ]
        return custom + super().get_urls()

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and self.sees_phi(request, obj):
            context["overview_url"] = reverse("admin:users_user_overview", args=[obj.pk])
        return super().render_change_form(request, context, add, change, form_url, obj)


# Only superusers grant privileges or set someone's password (support sends a link).
_PRIVILEGE_FIELDS = {"is_superuser", "groups", "user_permissions", "is_staff", "password"}
EXPORT_MAX_PATIENTS = 25


def export_response(request, queryset, *, fmt: str):
    """One patient: the document itself; several: a zip with one document each."""
    from interop.services import fhir_bundle_stream, personal_export_stream

    patients = list(queryset.select_related("profile").order_by("pk")[: EXPORT_MAX_PATIENTS + 1])
    if len(patients) > EXPORT_MAX_PATIENTS:
        messages.error(request, f"Export at most {EXPORT_MAX_PATIENTS} patients at a time.")
        return None

    def document(patient) -> Iterator[bytes]:
        if fmt == "fhir":
            return fhir_bundle_stream(subject=patient)
        return personal_export_stream(user=patient)

    suffix, content_type = (
        ("fhir.json", "application/fhir+json") if fmt == "fhir" else ("json", "application/json")
    )
    audit_set(
        request, action=AuditAction.EXPORT, resource_type=f"admin_export_{fmt}",
        subject_id=patients[0].pk if len(patients) == 1 else None, object_ids=[p.pk for p in patients],
    )  # fmt: skip
    if len(patients) == 1:
        response = StreamingHttpResponse(document(patients[0]), content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="{patients[0].username}.{suffix}"'
        return response
    archive = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 - returned open
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for patient in patients:
            with bundle.open(f"{patient.username}.{suffix}", "w") as member:
                for chunk in document(patient):
                    member.write(chunk)
    archive.seek(0)
    return FileResponse(archive, as_attachment=True, filename=f"healthtrack-export-{fmt}.zip")


@admin.register(CareTeamMembership)
class CareTeamMembershipAdmin(admin.ModelAdmin):
    list_display = ("patient", "clinician", "created_at")
    list_select_related = ("patient", "clinician")
    raw_id_fields = ("patient", "clinician")
    search_fields = ("patient__username", "patient__email", "clinician__username", "clinician__email")
