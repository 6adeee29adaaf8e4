"""Who may see what: the one place that decides owner / care team / admin.

* A person sees and changes only their own data.
* A clinician (staff, in the ``clinicians`` group) reads the data of patients who put
  them on their care team, and may add insights for them; nothing else.
* Support staff (``support`` group, or staff without a clinical role) manage
  accounts; they never see health data or PHI.
* Admins (superusers) see everything.

Another user's data is a 404, never a 403: its existence is not disclosed. Every
refusal is written to the audit trail as ``denied``.
"""

from __future__ import annotations

from enum import StrEnum

from rest_framework.exceptions import NotFound

from healthtrack.audit import audit_deny
from users.models import CLINICIANS_GROUP, SUPPORT_GROUP


class Access(StrEnum):
    READ = "read"  # see a person's health data or profile
    WRITE = "write"  # create, change or delete a person's own records
    ANNOTATE = "annotate"  # add an insight for a person
    MANAGE_ACCOUNT = "manage_account"  # activate/deactivate, see account fields


def user_roles(user) -> frozenset[str]:
    """Group names of ``user``; taken from the authenticated snapshot when present."""
    roles = getattr(user, "_roles", None)
    if roles is None:
        roles = frozenset(user.groups.values_list("name", flat=True)) if user.pk else frozenset()
        user._roles = roles
    return roles


def is_admin(user) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_superuser)


def is_clinician(user) -> bool:
    return bool(user.is_authenticated and user.is_staff and CLINICIANS_GROUP in user_roles(user))


def is_account_manager(user) -> bool:
    """Support staff, and staff with no clinical role: they see and manage accounts,
    never health data or PHI."""
    if not (user.is_authenticated and user.is_staff):
        return False
    roles = user_roles(user)
    return SUPPORT_GROUP in roles or CLINICIANS_GROUP not in roles


def care_team_includes(*, clinician_id: int, patient_id: int) -> bool:
    from users.models import CareTeamMembership

    return CareTeamMembership.objects.filter(
        clinician_id=clinician_id, patient_id=patient_id, patient__is_active=True
    ).exists()


def can_access(actor, subject_id: int, access: Access) -> bool:
    """May ``actor`` exercise ``access`` on the data of user ``subject_id``?"""
    if not actor.is_authenticated or subject_id is None:
        return False
    if actor.pk == subject_id:
        return True
    if is_admin(actor):
        return True
    if access is Access.MANAGE_ACCOUNT:
        return is_account_manager(actor)
    if access in (Access.READ, Access.ANNOTATE) and is_clinician(actor):
        return care_team_includes(clinician_id=actor.pk, patient_id=subject_id)
    return False


def authorize_subject(request, subject_id: int, access: Access, *, resource_type: str, object_ids=()) -> int:
    """Return ``subject_id`` if the caller may ``access`` it, else audit and raise 404."""
    if can_access(request.user, subject_id, access):
        return subject_id
    audit_deny(request, resource_type=resource_type, subject_id=subject_id, object_ids=object_ids)
    raise NotFound()


def parse_user_id(raw) -> int:
    """A user id from a path or query string; anything malformed is simply not found."""
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise NotFound() from None
    if value <= 0 or value > 2**63 - 1:
        raise NotFound()
    return value
