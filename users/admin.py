"""Accounts in the admin, scoped by role.

* Superusers: every account, with the profile (PHI decrypted).
* Clinicians: only their care-team patients, read-only, with the profile.
* Support (and staff without a clinical role): every account, never the profile — no
  date of birth, no medical history — with activate / deactivate / password-link actions.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.urls import path, reverse
from django.utils.html import format_html

from healthtrack.admin import AuditedAdminMixin, patient_ids_in_scope
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
    actions = ["deactivate_selected", "activate_selected", "password_set_links"]

    # --- scope ---------------------------------------------------------------------

    def get_queryset(self, request) -> QuerySet:
        queryset = super().get_queryset(request)
        if is_clinician(request.user) and not is_admin(request.user):
            return queryset.filter(pk__in=patient_ids_in_scope(request))
        return queryset

    def _sees_phi(self, request, obj=None) -> bool:
        """Superusers, and clinicians (who only ever reach their patients)."""
        return is_admin(request.user) or is_clinician(request.user)

    def get_inlines(self, request, obj):
        return [ProfileInline] if obj is not None and self._sees_phi(request, obj) else []

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None and not is_admin(request.user):
            # Only superusers grant privileges.
            fieldsets = [
                (name, {**options, "fields": [f for f in options["fields"] if f not in _PRIVILEGE_FIELDS]})
                for name, options in fieldsets
            ]
        return fieldsets

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
        if obj is not None and self._sees_phi(request, obj):
            context["overview_url"] = reverse("admin:users_user_overview", args=[obj.pk])
        return super().render_change_form(request, context, add, change, form_url, obj)


_PRIVILEGE_FIELDS = {"is_superuser", "groups", "user_permissions", "is_staff"}


@admin.register(CareTeamMembership)
class CareTeamMembershipAdmin(admin.ModelAdmin):
    list_display = ("patient", "clinician", "created_at")
    list_select_related = ("patient", "clinician")
    raw_id_fields = ("patient", "clinician")
    search_fields = ("patient__username", "patient__email", "clinician__username", "clinician__email")
