"""The patient overview page in the admin: one screen a clinician reads before a visit."""

from __future__ import annotations

from django.http import Http404
from django.template.response import TemplateResponse

from healthtrack.audit import audit_deny, audit_set
from healthtrack.models import AuditAction
from users.models import User

WINDOWS = (30, 90)


def patient_overview_view(model_admin):
    def view(request, user_id: int):
        patient = model_admin.get_queryset(request).select_related("profile").filter(pk=user_id).first()
        if patient is None or not model_admin._sees_phi(request, patient):
            if User.objects.filter(pk=user_id).exists():
                audit_deny(request, resource_type="overview", subject_id=user_id)
            raise Http404("No such patient.")
        try:
            days = int(request.GET.get("days", WINDOWS[0]))
        except ValueError:
            days = WINDOWS[0]
        days = days if days in WINDOWS else WINDOWS[0]
        audit_set(request, action=AuditAction.READ, resource_type="overview", subject_id=patient.pk)
        context = {
            **model_admin.admin_site.each_context(request),
            "title": f"Patient overview: {patient.get_full_name() or patient.username}",
            "opts": model_admin.model._meta,
            "patient": patient,
            "profile": getattr(patient, "profile", None),
            "days": days,
            "windows": WINDOWS,
        }
        return TemplateResponse(request, "admin/users/user/overview.html", context)

    return view
