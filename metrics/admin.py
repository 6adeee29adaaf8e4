"""Health metrics in the admin (basic; the console issue polishes it).

Edits here follow the API's rules: the same ``sample_clean`` validates and converts to
the canonical unit, the sync identity and timestamps are read-only once stored, and
every change or deletion invalidates the owner's cached reads and updates their goals.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils import timezone

from healthtrack.admin import PatientScopedAdmin
from metrics.models import HealthMetric
from metrics.services import metric_data_changed
from metrics.validation import SAMPLE_FIELDS, sample_clean


class HealthMetricAdminForm(forms.ModelForm):
    class Meta:
        model = HealthMetric
        fields = ("user", *SAMPLE_FIELDS)
        help_texts = {
            "unit": "Unit of the value(s) entered, e.g. lb or °F; blank for the canonical unit. "
            "Stored converted to the type's canonical unit.",
            "secondary_value": "Diastolic pressure (blood pressure only).",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "unit" in self.fields:
            self.fields["unit"].required = False  # blank: the canonical unit

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        instance = self.instance if self.instance.pk else None
        owner = instance.user_id if instance is not None else getattr(cleaned.get("user"), "pk", None)
        if owner is None:
            return cleaned
        data = {name: cleaned.get(name) for name in SAMPLE_FIELDS if name in self.fields}
        if data.get("unit") == "":
            data["unit"] = None
        if data.get("recorded_at") is not None:
            data["recorded_at"] = data["recorded_at"].isoformat()
        fields, errors = sample_clean(
            data, user_id=owner, now=timezone.now(), instance=instance, partial=instance is not None
        )
        for name, message in errors:
            self.add_error(name if name in self.fields else None, message)
        if fields is not None:
            cleaned.update({name: value for name, value in fields.items() if name in self.fields})
        return cleaned


@admin.register(HealthMetric)
class HealthMetricAdmin(PatientScopedAdmin):
    audit_resource_type = "metric"
    form = HealthMetricAdminForm
    list_display = (
        "id",
        "user",
        "metric_type",
        "reading",
        "recorded_at",
        "source",
        "external_id",
        "created_at",
    )
    list_filter = ("metric_type", "source")
    date_hierarchy = "recorded_at"
    search_fields = ("user__email", "user__username", "=external_id")
    raw_id_fields = ("user",)
    list_select_related = ("user",)
    list_per_page = 100
    show_full_result_count = False  # no COUNT(*) over every sample on each page

    @admin.display(description="value", ordering="value")
    def reading(self, obj: HealthMetric) -> str:
        if obj.secondary_value is not None:
            return f"{obj.value:g}/{obj.secondary_value:g} {obj.unit}"
        return f"{obj.value:g} {obj.unit}"

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ("created_at",)
        # The owner, when it was measured and its sync identity are facts of the sample.
        return ("user", "recorded_at", "source", "external_id", "created_at")

    def save_model(self, request, obj, form, change):
        previous_type = form.initial.get("metric_type") if change else None
        super().save_model(request, obj, form, change)
        metric_data_changed(user_id=obj.user_id, metric_types={obj.metric_type, previous_type} - {None})

    def delete_model(self, request, obj):
        user_id, metric_type = obj.user_id, obj.metric_type
        super().delete_model(request, obj)
        metric_data_changed(user_id=user_id, metric_types=[metric_type])

    def delete_queryset(self, request, queryset):
        changed: dict[int, set[str]] = {}
        for user_id, metric_type in queryset.values_list("user_id", "metric_type").order_by().distinct():
            changed.setdefault(user_id, set()).add(metric_type)
        super().delete_queryset(request, queryset)
        for user_id, metric_types in changed.items():
            metric_data_changed(user_id=user_id, metric_types=metric_types)
