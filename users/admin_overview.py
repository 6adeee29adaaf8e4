"""The patient overview in the admin: the one screen a clinician reads before a visit.

Profile facts, active goals with progress, the current top-5 recommendations with their
reasoning, unread insights (which the clinician can mark read), and server-side SVG
charts of the last 30 or 90 local days in the patient's time zone.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import orjson
from django.contrib import messages
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from rest_framework.exceptions import NotFound

from goals.models import GoalStatus, HealthGoal
from goals.services import goal_progress_of
from healthtrack.audit import audit_deny, audit_set
from healthtrack.charts import ReferenceLine, Series, line_chart
from healthtrack.db import local_day_bounds
from healthtrack.models import AuditAction
from insights.models import HealthInsight
from insights.services import insight_mark_read, recommendations_body
from metrics.registry import METRIC_TYPES
from metrics.selectors import metric_daily_series
from nutrition.selectors import nutrition_daily_totals
from users.models import User

WINDOWS = (30, 90)
UNREAD_SHOWN = 10


@dataclass(frozen=True)
class MetricChart:
    metric_type: str
    title: str
    reference: ReferenceLine | None = None
    decimals: int = 0


# Reference lines are the thresholds the recommendation rules use.
METRIC_CHARTS = (
    MetricChart("steps", "Steps per day", ReferenceLine(5000, "5,000 steps")),
    MetricChart("sleep", "Sleep per night", ReferenceLine(7, "7 h"), decimals=1),
    MetricChart("resting_heart_rate", "Resting heart rate", ReferenceLine(85, "85 bpm")),
    MetricChart("weight", "Weight", decimals=1),
    MetricChart("blood_pressure", "Blood pressure", ReferenceLine(130, "130 mmHg systolic")),
    MetricChart("blood_glucose", "Blood glucose"),
)


def _age(date_of_birth: datetime.date | None, today: datetime.date) -> int | None:
    if date_of_birth is None:
        return None
    before_birthday = (today.month, today.day) < (date_of_birth.month, date_of_birth.day)
    return today.year - date_of_birth.year - before_birthday


def _metric_charts(*, patient_id: int, tz: str, first_day, last_day) -> list[dict]:
    since, until = local_day_bounds(tz=tz, first_day=first_day, last_day=last_day)
    series = metric_daily_series(
        user_id=patient_id,
        metric_types=[chart.metric_type for chart in METRIC_CHARTS],
        since=since,
        until=until,
        tz=tz,
    )
    charts = []
    for chart in METRIC_CHARTS:
        dated = [(datetime.date.fromisoformat(p["date"]), p) for p in series.get(chart.metric_type, [])]
        if chart.metric_type == "blood_pressure":
            drawn = [
                Series("systolic", [(day, p["avg"]) for day, p in dated]),
                Series("diastolic", [(day, p["secondary"]["avg"]) for day, p in dated if p["secondary"]]),
            ]
        else:
            drawn = [Series(chart.metric_type, [(day, p["value"]) for day, p in dated])]
        unit = METRIC_TYPES[chart.metric_type].canonical_unit
        charts.append(
            {
                "id": chart.metric_type,
                "title": chart.title,
                "days_with_data": len(dated),
                "svg": line_chart(
                    title=chart.title,
                    unit=unit,
                    start=first_day,
                    end=last_day,
                    series=drawn,
                    reference=chart.reference,
                    decimals=chart.decimals,
                ),
            }
        )
    return charts


def _nutrition_charts(*, patient_id: int, tz: str, days: int, now, first_day, last_day) -> list[dict]:
    totals = nutrition_daily_totals(user_id=patient_id, tz=tz, days=days, now=now)["daily"]
    logged = [row for row in totals if row["entries"]]

    def chart(field: str, chart_id: str, title: str, unit: str, reference: ReferenceLine | None) -> dict:
        points = [(datetime.date.fromisoformat(row["date"]), row[field]) for row in logged if row[field]]
        return {
            "id": chart_id,
            "title": title,
            "days_with_data": len(points),
            "svg": line_chart(
                title=title, unit=unit, start=first_day, end=last_day,
                series=[Series(chart_id, points)], reference=reference,
            ),
        }  # fmt: skip

    return [
        chart("calories", "calories", "Calories per day", "kcal", None),
        chart("water_ml", "water", "Water per day", "ml", ReferenceLine(2000, "2,000 ml")),
    ]


def patient_overview_context(*, patient: User, days: int, now: datetime.datetime | None = None) -> dict:
    """Everything the overview shows, read with a fixed number of queries."""
    now = now or timezone.now()
    profile = getattr(patient, "profile", None)
    tz = (profile.timezone if profile else None) or "UTC"
    last_day = timezone.localtime(now, ZoneInfo(tz)).date()
    first_day = last_day - datetime.timedelta(days=days - 1)

    goals = [
        {"goal": goal, "progress": goal_progress_of(goal)}
        for goal in HealthGoal.objects.filter(user=patient, status=GoalStatus.ACTIVE).order_by("-created_at")
    ]
    try:
        body, _ = recommendations_body(user_id=patient.pk, days=30)
        recommendations = orjson.loads(body)["recommendations"]
    except NotFound:  # a deactivated account gets no recommendations
        recommendations = []
    unread = list(
        HealthInsight.objects.filter(user=patient, is_read=False)
        .select_related("created_by")
        .order_by("-created_at")[:UNREAD_SHOWN]
    )
    return {
        "patient": patient,
        "profile": profile,
        "age": _age(profile.date_of_birth if profile else None, last_day),
        "timezone": tz,
        "goals": goals,
        "recommendations": recommendations,
        "unread_insights": unread,
        "charts": _metric_charts(patient_id=patient.pk, tz=tz, first_day=first_day, last_day=last_day)
        + _nutrition_charts(
            patient_id=patient.pk, tz=tz, days=days, now=now, first_day=first_day, last_day=last_day
        ),
        "first_day": first_day,
        "last_day": last_day,
    }


def patient_overview_view(model_admin):
    """The overview page, bound to the user admin (its scope decides who is reachable)."""

    def find_patient(request, user_id: int) -> User:
        patient = model_admin.get_queryset(request).select_related("profile").filter(pk=user_id).first()
        if patient is None or not model_admin.sees_phi(request, patient):
            if User.objects.filter(pk=user_id).exists():
                audit_deny(request, resource_type="overview", subject_id=user_id)
            raise Http404("No such patient.")
        return patient

    def view(request, user_id: int):
        patient = find_patient(request, user_id)
        if request.method == "POST":
            return mark_read(request, patient)
        try:
            days = int(request.GET.get("days", WINDOWS[0]))
        except ValueError:
            days = WINDOWS[0]
        days = days if days in WINDOWS else WINDOWS[0]
        audit_set(request, action=AuditAction.READ, resource_type="overview", subject_id=patient.pk)
        context = {
            **model_admin.admin_site.each_context(request),
            **patient_overview_context(patient=patient, days=days),
            "title": f"Patient overview: {patient.get_full_name() or patient.username}",
            "opts": model_admin.model._meta,
            "days": days,
            "windows": WINDOWS,
            "can_mark_read": request.user.has_perm("insights.change_healthinsight"),
        }
        return TemplateResponse(request, "admin/users/user/overview.html", context)

    def mark_read(request, patient: User):
        if not request.user.has_perm("insights.change_healthinsight"):
            raise Http404("No such insight.")
        insight = HealthInsight.objects.filter(user=patient, pk=request.POST.get("insight_id") or 0).first()
        if insight is None:
            raise Http404("No such insight.")
        insight_mark_read(insight=insight, is_read=True)
        audit_set(
            request,
            action=AuditAction.UPDATE,
            resource_type="insight",
            subject_id=patient.pk,
            object_ids=[insight.pk],
        )
        messages.success(request, f"Marked “{insight.title}” read.")
        return HttpResponseRedirect(reverse("admin:users_user_overview", args=[patient.pk]) + "#insights")

    return view
