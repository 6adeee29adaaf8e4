"""Writes and rules for accounts, sessions and profiles."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from rest_framework_simplejwt.exceptions import AuthenticationFailed, TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import datetime_from_epoch

from healthtrack.permissions import is_clinician
from users.authentication import EPOCH_CLAIM, SESSION_CLAIM
from users.models import CareTeamMembership, Profile, RevokedSession, User
from users.selectors import user_auth_snapshot_invalidate, user_find_by_login

PROFILE_FIELDS = (
    "date_of_birth",
    "gender",
    "height_cm",
    "occupation",
    "medical_history",
    "timezone",
)
ACCOUNT_FIELDS = ("first_name", "last_name", "email")


def _check_unique(*, email: str | None, username: str | None, exclude_id: int | None = None) -> None:
    errors: dict[str, list[str]] = {}
    others = User.objects.exclude(pk=exclude_id) if exclude_id else User.objects.all()
    if email and others.filter(email__iexact=email).exists():
        errors["email"] = ["A user with this email already exists."]
    if username and others.filter(username__iexact=username).exists():
        errors["username"] = ["A user with this username already exists."]
    if errors:
        raise ValidationError(errors)


def _uniqueness_error_from(error: IntegrityError) -> ValidationError:
    text = str(error)
    if "email" in text:
        return ValidationError({"email": ["A user with this email already exists."]})
    return ValidationError({"username": ["A user with this username already exists."]})


@transaction.atomic
def user_register(
    *,
    email: str,
    username: str,
    password: str,
    first_name: str = "",
    last_name: str = "",
    **profile_fields: Any,
) -> User:
    """Create an account and its profile; 400-style errors name the offending field."""
    email = User.objects.normalize_email(email).strip()
    username = username.strip()
    _check_unique(email=email, username=username)
    user = User(email=email, username=username, first_name=first_name, last_name=last_name)
    try:
        validate_password(password, user=user)
    except ValidationError as error:
        raise ValidationError({"password": list(error.messages)}) from None
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as error:  # a concurrent registration won the race
        raise _uniqueness_error_from(error) from None
    Profile.objects.create(user=user, **{k: v for k, v in profile_fields.items() if k in PROFILE_FIELDS})
    return user


@transaction.atomic
def user_update(*, user: User, data: dict[str, Any]) -> User:
    """Change account names/email and profile fields; other keys are ignored."""
    user = User.objects.select_for_update(of=("self",)).select_related("profile").get(pk=user.pk)
    if "email" in data:
        data["email"] = User.objects.normalize_email(data["email"]).strip()
        _check_unique(email=data["email"], username=None, exclude_id=user.pk)
    account_changes = {k: data[k] for k in ACCOUNT_FIELDS if k in data}
    profile_changes = {k: data[k] for k in PROFILE_FIELDS if k in data}
    for field, value in account_changes.items():
        setattr(user, field, value)
    if account_changes:
        try:
            with transaction.atomic():
                user.save(update_fields=list(account_changes))
        except IntegrityError as error:
            raise _uniqueness_error_from(error) from None
    profile, _ = Profile.objects.get_or_create(user=user)
    for field, value in profile_changes.items():
        setattr(profile, field, value)
    if profile_changes:
        profile.save()
    user.profile = profile
    user_auth_snapshot_invalidate(user_id=user.pk)
    return user


@transaction.atomic
def user_deactivate(*, user_id: int) -> None:
    """Soft delete: the account and its data stay; every token stops working at once."""
    User.objects.filter(pk=user_id).update(
        is_active=False, deactivated_at=timezone.now(), auth_epoch=F("auth_epoch") + 1
    )
    _blacklist_outstanding_tokens(user_id=user_id)
    user_auth_snapshot_invalidate(user_id=user_id)


@transaction.atomic
def user_reactivate(*, user_id: int) -> None:
    User.objects.filter(pk=user_id).update(is_active=True, deactivated_at=None)
    user_auth_snapshot_invalidate(user_id=user_id)


@transaction.atomic
def user_sessions_end(*, user_id: int) -> None:
    """End every session of a user at once: access tokens (epoch) and refresh tokens.

    For changes made outside the API that must sign someone out, such as a password
    set by an administrator.
    """
    User.objects.filter(pk=user_id).update(auth_epoch=F("auth_epoch") + 1)
    _blacklist_outstanding_tokens(user_id=user_id)
    user_auth_snapshot_invalidate(user_id=user_id)


def _blacklist_outstanding_tokens(*, user_id: int) -> None:
    pending = OutstandingToken.objects.filter(
        user_id=user_id, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True
    ).values_list("id", flat=True)
    BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token_id=token_id) for token_id in pending], ignore_conflicts=True
    )


# --- Sessions -----------------------------------------------------------------------


def _refresh_token_for(user: User, *, session_id: str | None = None) -> RefreshToken:
    refresh = RefreshToken()
    refresh["user_id"] = str(user.pk)
    refresh[SESSION_CLAIM] = session_id or uuid.uuid4().hex
    refresh[EPOCH_CLAIM] = user.auth_epoch
    OutstandingToken.objects.create(
        user_id=user.pk,
        jti=refresh["jti"],
        token=str(refresh),
        created_at=refresh.current_time,
        expires_at=datetime_from_epoch(refresh["exp"]),
    )
    return refresh


def _token_pair(refresh: RefreshToken) -> dict[str, str]:
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


def auth_tokens_issue(*, user: User) -> dict[str, str]:
    """Start a new session for ``user``: a fresh access/refresh pair."""
    return _token_pair(_refresh_token_for(user))


def auth_login(*, request, login: str, password: str) -> tuple[User | None, dict[str, str] | None]:
    """Check credentials (username or email); returns the user and a token pair, or Nones."""
    user = authenticate(request, username=login, password=password)
    if user is None:
        return None, None
    return user, auth_tokens_issue(user=user)


def _decode_refresh(raw: str) -> RefreshToken:
    try:
        return RefreshToken(raw)
    except TokenError as error:
        raise AuthenticationFailed(str(error), code="token_not_valid") from None


def _session_user(refresh: RefreshToken) -> User:
    user = User.objects.filter(pk=refresh.get("user_id")).first()
    if user is None or not user.is_active:
        raise AuthenticationFailed("User is inactive or deleted.", code="user_inactive")
    if refresh.get(EPOCH_CLAIM) != user.auth_epoch:
        raise AuthenticationFailed("Token has been revoked.", code="token_revoked")
    if RevokedSession.objects.filter(sid=refresh.get(SESSION_CLAIM)).exists():
        raise AuthenticationFailed("Token has been revoked.", code="token_revoked")
    return user


def _consume(refresh: RefreshToken) -> bool:
    """Blacklist ``refresh``; True only for the one caller that actually did it.

    The unique constraint on the blacklist decides races: of twenty parallel refreshes
    of one token, exactly one inserts the row and gets a new pair.
    """
    outstanding, _ = OutstandingToken.objects.get_or_create(
        jti=refresh["jti"],
        defaults={
            "user_id": refresh.get("user_id"),
            "token": str(refresh),
            "created_at": refresh.current_time,
            "expires_at": datetime_from_epoch(refresh["exp"]),
        },
    )
    _, created = BlacklistedToken.objects.get_or_create(token=outstanding)
    return created


@transaction.atomic
def auth_tokens_refresh(*, raw_refresh: str) -> dict[str, str]:
    """Rotate: the refresh token is used up and a new pair of the same session issued."""
    refresh = _decode_refresh(raw_refresh)
    user = _session_user(refresh)
    if not _consume(refresh):
        raise AuthenticationFailed("Token is blacklisted.", code="token_not_valid")
    return _token_pair(_refresh_token_for(user, session_id=refresh.get(SESSION_CLAIM)))


@transaction.atomic
def auth_logout(
    *, raw_refresh: str, access_session_id: str | None = None, access_user_id: int | None = None
) -> User:
    """End the session of ``raw_refresh``: it and every access token of it are refused.

    The caller's own access session (``access_session_id``) ends too, but only when it
    belongs to the same person as the refresh token.
    """
    refresh = _decode_refresh(raw_refresh)
    user_id = int(refresh.get("user_id"))
    _consume(refresh)
    expires_at = datetime_from_epoch(refresh["exp"])
    sessions = {refresh.get(SESSION_CLAIM)}
    if access_user_id == user_id:
        sessions.add(access_session_id)
    for session_id in sessions - {None}:
        RevokedSession.objects.get_or_create(
            sid=session_id, defaults={"user_id": user_id, "expires_at": expires_at}
        )
    user_auth_snapshot_invalidate(user_id=user_id)
    return User(pk=user_id)


@transaction.atomic
def auth_password_change(*, user: User, old_password: str, new_password: str) -> dict[str, str]:
    """Change the password; every existing session ends, a new one is returned."""
    user = User.objects.select_for_update().get(pk=user.pk)
    if not user.check_password(old_password):
        raise ValidationError({"old_password": ["The current password is not correct."]})
    try:
        validate_password(new_password, user=user)
    except ValidationError as error:
        raise ValidationError({"new_password": list(error.messages)}) from None
    user.set_password(new_password)
    user.save(update_fields=["password"])
    user_sessions_end(user_id=user.pk)
    user.refresh_from_db(fields=["auth_epoch"])
    return auth_tokens_issue(user=user)


def user_password_set_link(*, user: User, base_url: str) -> str:
    """A one-time link where ``user`` sets a new password (used once, it stops working:
    the token covers the current password hash and last login)."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    path = reverse("password_set_confirm", kwargs={"uidb64": uid, "token": token})
    return base_url.rstrip("/") + path


# --- Care team ----------------------------------------------------------------------

NOT_A_CLINICIAN = "No active clinician has this username or email."


@transaction.atomic
def care_team_grant(*, patient: User, clinician_login: str) -> tuple[CareTeamMembership, bool]:
    """Give a clinician read access to ``patient``'s data; returns ``(membership, created)``.

    ``clinician_login`` is a username or an email. Only active staff in the clinicians
    group can be granted, and nobody can grant themselves; both refusals are 400s on
    ``clinician``, with one message for unknown accounts and non-clinicians so the
    answer does not tell which accounts exist. Granting someone already on the team
    returns the existing membership.
    """
    clinician = user_find_by_login(clinician_login.strip())
    if clinician is not None and clinician.pk == patient.pk:
        raise ValidationError({"clinician": ["You cannot add yourself to your own care team."]})
    if clinician is None or not clinician.is_active or not is_clinician(clinician):
        raise ValidationError({"clinician": [NOT_A_CLINICIAN]})
    # get_or_create retries the read when a concurrent grant wins the unique constraint.
    return CareTeamMembership.objects.select_related("clinician").get_or_create(
        patient_id=patient.pk, clinician=clinician
    )


@transaction.atomic
def care_team_revoke(*, membership: CareTeamMembership) -> None:
    """End a clinician's access. ``healthtrack.permissions.care_team_includes`` reads the
    memberships on every request (nothing caches them), so it ends with the next one."""
    membership.delete()
