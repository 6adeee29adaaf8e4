"""Insights in the admin.

Clinicians see their care-team patients' insights, may write new ones for those patients
(through ``insight_create``, so the author and the patient's local date are set as in
the API) and may mark them read; nothing else about an insight changes after it is made.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin

from healthtrack.admin import PatientScopedAdmin, patient_ids_in_scope
from healthtrack.permissions import is_admin
from insights.models import HealthInsight
from insights.services import insight_create, insight_mark_read
from users.models import User

CLINICIAN_NOTE_CODE = "clinician_note"
_AUTHORED_FIELDS = (
    "user",
    "code",
    "category",
    "title",
    "description",
    "reasoning",
    "action_steps",
    "severity",
    "related_metric_type",
)


class HealthInsightAddForm(forms.ModelForm):
    class Meta:
        model = HealthInsight
        fields = _AUTHORED_FIELDS
        help_texts = {
            "code": f"A short machine name; blank means “{CLINICIAN_NOTE_CODE}”.",
            "action_steps": 'A JSON list of short steps, e.g. ["Walk 20 minutes after lunch"].',
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["code"].required = False

    author: User | None = None

    def clean_user(self):
        patient = self.cleaned_data["user"]
        if self.author is not None and patient.pk == self.author.pk:
            raise forms.ValidationError(
                "Insights are about someone else's data; you cannot write one about yourself."
            )
        return patient

    def clean_action_steps(self):
        steps = self.cleaned_data.get("action_steps") or []
        if not isinstance(steps, list) or not all(isinstance(step, str) for step in steps):
            raise forms.ValidationError("Enter a JSON list of strings.")
        return steps


@admin.register(HealthInsight)
class HealthInsightAdmin(PatientScopedAdmin):
    audit_resource_type = "insight"
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
    autocomplete_fields = ("user",)
    raw_id_fields = ("created_by",)
    list_select_related = ("user", "created_by")
    date_hierarchy = "insight_date"
    ordering = ("-created_at", "-id")
    show_full_result_count = False

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = type("HealthInsightAddForm", (HealthInsightAddForm,), {"author": request.user})
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return _AUTHORED_FIELDS
        return (*_AUTHORED_FIELDS, "insight_date", "rank", "score", "evidence", "is_read", "read_at")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        # What an insight said, and about whom, is history; only "read" changes.
        return tuple(f for f in self.get_fields(request, obj) if f != "is_read")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            patients = User.objects.filter(is_active=True)
            in_scope = patient_ids_in_scope(request)
            kwargs["queryset"] = patients if in_scope is None else patients.filter(pk__in=in_scope)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_delete_permission(self, request, obj=None):
        return is_admin(request.user) and super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        if change:
            if "is_read" in form.changed_data:
                stored = HealthInsight.objects.get(pk=obj.pk)
                insight_mark_read(insight=stored, is_read=obj.is_read)
                obj.read_at = stored.read_at
            return
        data = {name: form.cleaned_data.get(name) for name in _AUTHORED_FIELDS if name != "user"}
        data["code"] = data.get("code") or CLINICIAN_NOTE_CODE
        created = insight_create(author=request.user, user_id=obj.user_id, data=data)
        obj.pk = created.pk
        obj._state.adding = False
