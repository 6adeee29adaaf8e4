from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm

from users import services
from users.models import CareTeamMembership, Profile, User
from users.selectors import user_auth_snapshot_invalidate


class ProfileInline(admin.StackedInline):
    model = Profile
    can_delete = False
    fields = ("date_of_birth", "gender", "height_cm", "occupation", "timezone", "medical_history")


class SessionEndingPasswordChangeForm(AdminPasswordChangeForm):
    """A password set by an administrator ends every session of the account."""

    def save(self, commit=True):
        user = super().save(commit=commit)
        if commit:
            services.user_sessions_end(user_id=user.pk)
        return user


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Accounts in the admin; every change that ends or narrows access takes effect on
    the account's very next API request, as it does through the API."""

    inlines = [ProfileInline]
    list_display = ("username", "email", "first_name", "last_name", "is_active", "is_staff", "date_joined")
    list_filter = ("is_active", "is_staff", "is_superuser", "groups")
    search_fields = ("username", "email", "first_name", "last_name")
    ordering = ("-date_joined",)
    readonly_fields = ("date_joined", "last_login", "deactivated_at")
    change_password_form = SessionEndingPasswordChangeForm
    actions = ["deactivate_selected"]

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
        user_ids = list(queryset.filter(is_active=True).values_list("pk", flat=True))
        for user_id in user_ids:
            services.user_deactivate(user_id=user_id)
        self.message_user(request, f"Deactivated {len(user_ids)} account(s).")


@admin.register(CareTeamMembership)
class CareTeamMembershipAdmin(admin.ModelAdmin):
    list_display = ("patient", "clinician", "created_at")
    list_select_related = ("patient", "clinician")
    raw_id_fields = ("patient", "clinician")
    search_fields = ("patient__username", "patient__email", "clinician__username", "clinician__email")
