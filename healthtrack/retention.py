"""Retention: erase the health data of accounts soft-deleted longer ago than the period.

What goes: metrics, nutrition logs, goals, insights about the person, care-team
memberships (both as patient and as clinician), revoked sessions and refresh tokens
(with their blacklist entries), and the PHI on the profile (date of birth, medical
history, height, gender, occupation).

What stays: the account row (username, email, names, ``deactivated_at``), so the audit
trail's references still name someone; its time zone; insights the person wrote about
*other* patients as a clinician (those are the other patients' records); and the audit
trail itself, which is append-only. Each purged account gets one audit event
(action ``delete``, resource ``user_data``, no actor: the system did it), which is also
how a later run knows the account has been purged already.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import Count, Exists, Model, OuterRef, QuerySet
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from goals.models import HealthGoal
from healthtrack.cache import user_data_version_bump
from healthtrack.models import AuditAction, AuditEvent
from insights.models import HealthInsight
from metrics.models import HealthMetric
from nutrition.models import NutritionLog
from users.models import CareTeamMembership, Profile, RevokedSession, User
from users.selectors import user_auth_snapshot_invalidate

PURGE_RESOURCE_TYPE = "user_data"
PURGE_AUDIT_AGENT = "manage.py purge_deleted_users"

# (label, model, field holding the user id) for every kind of row that is deleted.
PURGED_KINDS: tuple[tuple[str, type[Model], str], ...] = (
    ("metrics", HealthMetric, "user_id"),
    ("nutrition logs", NutritionLog, "user_id"),
    ("goals", HealthGoal, "user_id"),
    ("insights", HealthInsight, "user_id"),
    ("care-team links as patient", CareTeamMembership, "patient_id"),
    ("care-team links as clinician", CareTeamMembership, "clinician_id"),
    ("revoked sessions", RevokedSession, "user_id"),
    ("refresh tokens", OutstandingToken, "user_id"),
)
PROFILE_PHI_CLEARED = {
    "date_of_birth": None,
    "medical_history": None,
    "height_cm": None,
    "gender": "",
    "occupation": "",
}


@dataclass
class PurgedAccount:
    user_id: int
    username: str
    deactivated_at: datetime
    deleted: dict[str, int] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(self.deleted.values())


def users_due_for_purge(*, cutoff: datetime) -> QuerySet[User]:
    """Soft-deleted before ``cutoff`` and not purged since they were deactivated."""
    purged_since_deactivation = AuditEvent.objects.filter(
        subject_id=OuterRef("pk"),
        action=AuditAction.DELETE,
        resource_type=PURGE_RESOURCE_TYPE,
        timestamp__gte=OuterRef("deactivated_at"),
    )
    return (
        User.objects.filter(is_active=False, deactivated_at__isnull=False, deactivated_at__lt=cutoff)
        .exclude(Exists(purged_since_deactivation))
        .order_by("pk")
    )


def _counts(user_ids: list[int]) -> dict[int, dict[str, int]]:
    """Rows of each kind per user: one GROUP BY query per kind."""
    counts: dict[int, dict[str, int]] = {user_id: {} for user_id in user_ids}
    for label, model, user_field in PURGED_KINDS:
        per_user = (
            model.objects.filter(**{f"{user_field}__in": user_ids})
            .values(user_field)
            .annotate(rows=Count("pk"))
            .values_list(user_field, "rows")
        )
        for user_id, rows in per_user:
            counts[user_id][label] = rows
    return counts


def user_data_purge_preview(*, users: list[User]) -> list[PurgedAccount]:
    """What ``user_data_purge`` would delete for ``users``, changing nothing."""
    counts = _counts([user.pk for user in users])
    return [
        PurgedAccount(
            user_id=user.pk,
            username=user.username,
            deactivated_at=user.deactivated_at,
            deleted=counts[user.pk],
        )
        for user in users
    ]


@transaction.atomic
def user_data_purge(*, users: list[User], run_id: str | None = None) -> list[PurgedAccount]:
    """Hard-delete the health data of ``users`` (soft-deleted accounts) in one transaction
    and write one audit event per account. Returns what was deleted per account."""
    run_id = run_id or uuid.uuid4().hex
    user_ids = [user.pk for user in users]
    # Lock the accounts: a reactivation racing the purge waits, then sees its result.
    locked = set(
        User.objects.select_for_update()
        .filter(pk__in=user_ids, is_active=False, deactivated_at__isnull=False)
        .values_list("pk", flat=True)
    )
    users = [user for user in users if user.pk in locked]
    user_ids = [user.pk for user in users]
    if not users:
        return []
    accounts = user_data_purge_preview(users=users)
    for _, model, user_field in PURGED_KINDS:
        # Set-based deletes; refresh tokens take their blacklist entries with them.
        model.objects.filter(**{f"{user_field}__in": user_ids}).delete()
    Profile.objects.filter(user_id__in=user_ids).update(**PROFILE_PHI_CLEARED)
    AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                actor_id=None,
                subject_id=user_id,
                action=AuditAction.DELETE,
                resource_type=PURGE_RESOURCE_TYPE,
                user_agent=PURGE_AUDIT_AGENT,
                request_id=run_id,
            )
            for user_id in user_ids
        ]
    )
    for user_id in user_ids:
        user_data_version_bump(user_id=user_id)  # no cached reads of erased data
        user_auth_snapshot_invalidate(user_id=user_id)  # revoked sessions are gone
    return accounts
