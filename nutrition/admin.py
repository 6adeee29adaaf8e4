from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from healthtrack.admin import DataVersionAdminMixin, PatientScopedAdmin
from nutrition import services
from nutrition.models import NutritionLog


class NutritionLogAdminForm(forms.ModelForm):
    """The admin applies the same rules as the API (nutrition.services)."""

    class Meta:
        model = NutritionLog
        fields = (
            "user",
            "meal_type",
            "description",
            "calories",
            "protein_g",
            "carbs_g",
            "fat_g",
            "water_ml",
            "logged_at",
            "source",
            "external_id",
        )

    def clean(self):
        cleaned = super().clean()
        values = {name: cleaned.get(name, getattr(self.instance, name)) for name in services.EDITABLE_FIELDS}
        if self.errors:
            return cleaned  # field errors first; the rules need parsed values
        errors = services.nutrition_log_errors(values)
        if errors:
            raise ValidationError(errors)
        return cleaned


@admin.register(NutritionLog)
class NutritionLogAdmin(DataVersionAdminMixin, PatientScopedAdmin):
    audit_resource_type = "nutrition"
    form = NutritionLogAdminForm
    list_display = (
        "logged_at",
        "user",
        "meal_type",
        "calories",
        "protein_g",
        "carbs_g",
        "fat_g",
        "water_ml",
        "source",
    )
    list_filter = ("meal_type", "source")
    date_hierarchy = "logged_at"
    search_fields = ("user__email", "user__username")
    raw_id_fields = ("user",)
    list_select_related = ("user",)
    ordering = ("-logged_at", "-id")
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        # When and where an entry was recorded, and the sync id, are history: editing them
        # would falsify it. They can be set when a log is added here.
        if obj is None:
            return ("created_at",)
        return ("user", "logged_at", "source", "external_id", "created_at")
