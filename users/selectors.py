"""Reads of accounts: who a caller may see, and the cached authentication snapshot."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from healthtrack.permissions import is_account_manager, is_admin, is_clinician
from users.models import CareTeamMembership, Profile, RevokedSession, User

# --- Authentication snapshot --------------------------------------------------------
#
# What every authenticated request needs to know about its user, without a database
# query: active, staff/superuser, group names, the token epoch, signed-out sessions and
# the time zone. No PHI. Valid only while its "v" equals the user's auth version, which
# is bumped after every change is committed, so a snapshot built from data read before
# a change can never be served after it.

_SNAPSHOT_FIELDS = ("id", "username", "email", "is_active", "is_staff", "is_superuser", "auth_epoch")


def _auth_version_key(user_id: int) -> str:
    return f"av:{user_id}"


def _auth_snapshot_key(user_id: int) -> str:
    return f"auth:{user_id}"


def user_auth_snapshot_build(*, user_id: int) -> dict[str, Any] | None:
    """Read the snapshot from the database (3 small queries)."""
    row = User.objects.filter(pk=user_id).values(*_SNAPSHOT_FIELDS, "profile__timezone").first()
    if row is None:
        return None
    row["timezone"] = row.pop("profile__timezone") or "UTC"
    row["roles"] = sorted(
        User.groups.through.objects.filter(user_id=user_id).values_list("group__name", flat=True)
    )
    row["revoked_sessions"] = sorted(
        RevokedSession.objects.filter(user_id=user_id, expires_at__gt=timezone.now()).values_list(
            "sid", flat=True
        )
    )
    return row


def user_auth_snapshot_keys(user_id: int) -> list[str]:
    """The cache keys ``user_auth_snapshot`` reads, for callers that fetch them early
    (the rate limiter reads them in the same round trip as its counters)."""
    return [_auth_version_key(user_id), _auth_snapshot_key(user_id)]


def user_auth_snapshot_current(*, user_id: int, found: dict[str, Any]) -> dict[str, Any] | None:
    """The snapshot among cache values ``found`` (read from ``user_auth_snapshot_keys``)
    if it is current; None when it is missing or older than the user's auth version."""
    version = found.get(_auth_version_key(user_id))
    snapshot = found.get(_auth_snapshot_key(user_id))
    if version is not None and snapshot is not None and snapshot.get("v") == version:
        return snapshot
    return None


def user_auth_snapshot(*, user_id: int, prefetched: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The user's snapshot: one cache round trip when warm (none when ``prefetched``
    holds its keys), the database otherwise."""
    version_key, snapshot_key = _auth_version_key(user_id), _auth_snapshot_key(user_id)
    if prefetched is not None and version_key in prefetched and snapshot_key in prefetched:
        found = prefetched
    else:
        found = cache.get_many([version_key, snapshot_key])
    snapshot = user_auth_snapshot_current(user_id=user_id, found=found)
    if snapshot is not None:
        return snapshot
    version = found.get(version_key)
    if version is None:
        version = timezone.now().timestamp()
        if not cache.add(version_key, version, timeout=None):
            version = cache.get(version_key, version)
    snapshot = user_auth_snapshot_build(user_id=user_id)
    if snapshot is not None:
        snapshot["v"] = version
        cache.set(snapshot_key, snapshot, timeout=settings.REDIS_CACHE_EXPIRE_PROFILE)
    return snapshot


def _invalidate_auth_snapshot(user_id: int) -> None:
    cache.set(_auth_version_key(user_id), timezone.now().timestamp(), timeout=None)
    cache.delete(_auth_snapshot_key(user_id))


def user_auth_snapshot_invalidate(*, user_id: int) -> None:
    """Make the next request rebuild the user's snapshot.

    Invalidates now and again once the surrounding transaction commits: a snapshot
    rebuilt in between from not-yet-committed data cannot survive the commit.
    """
    _invalidate_auth_snapshot(user_id)
    transaction.on_commit(lambda: _invalidate_auth_snapshot(user_id))


def user_from_snapshot(snapshot: dict[str, Any]) -> User:
    """A ``User`` built from the snapshot; other fields load lazily if ever touched."""
    # from_db consumes values in the model's field order, whatever order names are given.
    names = [f.attname for f in User._meta.concrete_fields if f.attname in _SNAPSHOT_FIELDS]
    user = User.from_db("default", names, [snapshot[name] for name in names])
    user._roles = frozenset(snapshot["roles"])
    user.timezone_name = snapshot["timezone"]
    return user


# --- Visibility ---------------------------------------------------------------------


def users_visible_to(actor: User) -> QuerySet[User]:
    """Accounts ``actor`` may see: self; a clinician's patients; all for admins and
    account managers (who never see the PHI in them, see users.views)."""
    queryset = User.objects.select_related("profile")
    if is_admin(actor) or is_account_manager(actor):
        return queryset
    visible = Q(pk=actor.pk)
    if is_clinician(actor):
        patient_ids = CareTeamMembership.objects.filter(
            clinician_id=actor.pk, patient__is_active=True
        ).values("patient_id")
        visible |= Q(pk__in=patient_ids)
    return queryset.filter(visible)


def user_list(*, actor: User) -> QuerySet[User]:
    return users_visible_to(actor).order_by("id")


def user_get_visible(*, actor: User, user_id: int) -> User | None:
    return users_visible_to(actor).filter(pk=user_id).first()


def user_get_visible_by_username(*, actor: User, username: str) -> User | None:
    if "\x00" in username:  # no account has one, and PostgreSQL refuses to compare it (a 500)
        return None
    return users_visible_to(actor).filter(username__iexact=username).first()


def user_find_by_login(login: str) -> User | None:
    """The account for a username or an email, case-insensitively."""
    field = "email__iexact" if "@" in login else "username__iexact"
    return User.objects.filter(**{field: login}).first()


def profile_of(user: User) -> Profile:
    try:
        return user.profile
    except Profile.DoesNotExist:
        return Profile(user=user)


def patient_ids_of(*, clinician_id: int) -> set[int]:
    """Active patients who put this clinician on their care team."""
    return set(
        CareTeamMembership.objects.filter(clinician_id=clinician_id, patient__is_active=True).values_list(
            "patient_id", flat=True
        )
    )


def user_timezone_name(*, user_id: int, active_only: bool = False) -> str | None:
    """The IANA time zone of user ``user_id`` (UTC without a profile); None when there is
    no such user (or, with ``active_only``, no such active user). One query; callers use
    it both for "a day" and as an existence check."""
    users = User.objects.filter(pk=user_id)
    if active_only:
        users = users.filter(is_active=True)
    rows = list(users.values_list("profile__timezone", flat=True)[:1])
    if not rows:
        return None
    return rows[0] or "UTC"


def user_is_active(*, user_id: int) -> bool:
    return User.objects.filter(pk=user_id, is_active=True).exists()


def care_team_of(*, patient_id: int) -> QuerySet[CareTeamMembership]:
    """The clinicians ``patient_id`` has granted access, oldest grant first."""
    return (
        CareTeamMembership.objects.filter(patient_id=patient_id)
        .select_related("clinician")
        .order_by("created_at", "id")
    )


def care_team_membership_get(*, membership_id: int) -> CareTeamMembership | None:
    return CareTeamMembership.objects.filter(pk=membership_id).first()


def patients_of(*, clinician_id: int) -> QuerySet[CareTeamMembership]:
    """Active patients who put this clinician on their care team, oldest grant first."""
    return (
        CareTeamMembership.objects.filter(clinician_id=clinician_id, patient__is_active=True)
        .select_related("patient")
        .order_by("created_at", "id")
    )
