"""Reads for exports: one query per section, rows as dicts, in a stable order.

The querysets are returned unevaluated; callers stream them with
``.iterator(chunk_size=...)`` so no section is ever materialised whole.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet

from goals.models import HealthGoal
from goals.serializers import GOAL_FIELDS
from healthtrack.models import AuditEvent
from insights.models import HealthInsight
from metrics.models import HealthMetric
from metrics.serializers import METRIC_FIELDS
from nutrition.models import NutritionLog
from nutrition.serializers import NUTRITION_LOG_FIELDS
from users.models import CareTeamMembership, User

INSIGHT_FIELDS = (
    "id",
    "user_id",
    "code",
    "category",
    "title",
    "description",
    "reasoning",
    "action_steps",
    "evidence",
    "severity",
    "score",
    "rank",
    "related_metric_type",
    "insight_date",
    "is_read",
    "read_at",
    "created_by_id",
    "created_at",
    "updated_at",
)
CARE_TEAM_FIELDS = (
    "id",
    "patient_id",
    "clinician_id",
    "clinician__username",
    "clinician__first_name",
    "clinician__last_name",
    "created_at",
)
AUDIT_FIELDS = (
    "id",
    "timestamp",
    "actor_id",
    "actor__username",
    "action",
    "resource_type",
    "object_ids",
    "method",
    "path",
    "status",
    "ip",
    "user_agent",
    "request_id",
)


def export_subject(*, user_id: int) -> User | None:
    """The person whose data is exported, with the profile (decrypted on access)."""
    return User.objects.select_related("profile").filter(pk=user_id).first()


def metric_rows(
    *,
    user_id: int,
    since: datetime | None = None,
    until: datetime | None = None,
    metric_types=None,
) -> QuerySet:
    """A person's metrics, oldest first; ``since`` inclusive, ``until`` exclusive."""
    queryset = HealthMetric.objects.filter(user_id=user_id)
    if since is not None:
        queryset = queryset.filter(recorded_at__gte=since)
    if until is not None:
        queryset = queryset.filter(recorded_at__lt=until)
    if metric_types is not None:
        queryset = queryset.filter(metric_type__in=list(metric_types))
    return queryset.order_by("recorded_at", "id").values(*METRIC_FIELDS)


def nutrition_rows(*, user_id: int) -> QuerySet:
    logs = NutritionLog.objects.filter(user_id=user_id)
    return logs.order_by("logged_at", "id").values(*NUTRITION_LOG_FIELDS)


def goal_rows(*, user_id: int) -> QuerySet:
    return HealthGoal.objects.filter(user_id=user_id).order_by("created_at", "id").values(*GOAL_FIELDS)


def insight_rows(*, user_id: int) -> QuerySet:
    return HealthInsight.objects.filter(user_id=user_id).order_by("created_at", "id").values(*INSIGHT_FIELDS)


def care_team_rows(*, user_id: int) -> QuerySet:
    """Memberships naming the person, as patient or as clinician."""
    return (
        CareTeamMembership.objects.filter(Q(patient_id=user_id) | Q(clinician_id=user_id))
        .order_by("created_at", "id")
        .values(*CARE_TEAM_FIELDS)
    )


def audit_rows(*, user_id: int) -> QuerySet:
    """The audit trail about the person's data (``subject`` = them), oldest first."""
    return AuditEvent.objects.filter(subject_id=user_id).order_by("timestamp", "id").values(*AUDIT_FIELDS)


def role_names(*, user_id: int) -> list[str]:
    return sorted(User.groups.through.objects.filter(user_id=user_id).values_list("group__name", flat=True))


def user_by_reference(reference: str) -> User | None:
    """The account an operator names on the command line: a numeric id, else an email,
    else a username (email and username case-insensitive, as sign-in treats them)."""
    reference = reference.strip()
    if not reference:
        return None
    if reference.isdigit():
        user_id = int(reference)
        return User.objects.filter(pk=user_id).first() if user_id <= 2**63 - 1 else None
    if "@" in reference:
        user = User.objects.filter(email__iexact=reference).first()
        if user is not None:
            return user
    return User.objects.filter(username__iexact=reference).first()
