"""Accounts: the user, their profile (with encrypted PHI) and their care team."""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.contrib.auth.models import AbstractUser, UserManager
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower

from healthtrack.encryption import EncryptedDateField, EncryptedTextField

CLINICIANS_GROUP = "clinicians"
SUPPORT_GROUP = "support"


def validate_timezone(value: str) -> None:
    if value not in available_timezones():
        raise ValidationError(
            "'%(value)s' is not an IANA time zone name (e.g. 'Europe/Paris').",
            params={"value": value},
            code="invalid_timezone",
        )


_TIMEZONES: frozenset[str] | None = None


def available_timezones() -> frozenset[str]:
    global _TIMEZONES
    if _TIMEZONES is None:
        _TIMEZONES = frozenset(zoneinfo.available_timezones()) | {"UTC"}
    return _TIMEZONES


class HealthTrackUserManager(UserManager):
    def get_by_natural_key(self, username):
        return self.get(username__iexact=username)


class User(AbstractUser):
    """An account. Health-related profile facts live on ``Profile``.

    Emails and usernames are unique case-insensitively. ``auth_epoch`` is carried in
    every token; bumping it (password change, deactivation) ends every session at once.
    """

    email = models.EmailField("email address", max_length=254, blank=True)
    auth_epoch = models.PositiveIntegerField(default=0, editable=False)
    deactivated_at = models.DateTimeField(
        null=True, blank=True, help_text="When the account was soft-deleted or deactivated."
    )

    objects = HealthTrackUserManager()

    REQUIRED_FIELDS = ["email"]

    class Meta:
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                condition=~models.Q(email=""),
                name="users_user_email_ci_unique",
                violation_error_message="A user with this email already exists.",
            ),
            models.UniqueConstraint(
                Lower("username"),
                name="users_user_username_ci_unique",
                violation_error_message="A user with this username already exists.",
            ),
        ]


class Gender(models.TextChoices):
    FEMALE = "female", "Female"
    MALE = "male", "Male"
    NON_BINARY = "non_binary", "Non-binary"
    OTHER = "other", "Other"
    UNDISCLOSED = "prefer_not_to_say", "Prefer not to say"


class Profile(models.Model):
    """Profile facts used by the insights engine; PHI fields are encrypted at rest."""

    user = models.OneToOneField(User, primary_key=True, on_delete=models.CASCADE, related_name="profile")
    date_of_birth = EncryptedDateField(null=True, blank=True)
    gender = models.CharField(max_length=20, choices=Gender.choices, blank=True)
    height_cm = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(30), MaxValueValidator(272)],
    )
    occupation = models.CharField(max_length=120, blank=True)
    medical_history = EncryptedTextField(null=True, blank=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Profile of {self.user_id}"


class CareTeamMembership(models.Model):
    """A patient's grant of read access to a clinician; deleting it revokes access."""

    patient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="care_team_memberships"
    )
    clinician = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="patient_memberships"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["patient", "clinician"], name="care_team_unique_pair"),
            models.CheckConstraint(
                condition=~models.Q(patient=models.F("clinician")), name="care_team_not_self"
            ),
        ]
        indexes = [models.Index(fields=["clinician", "patient"], name="care_team_by_clinician")]

    def __str__(self) -> str:
        return f"{self.clinician_id} cares for {self.patient_id}"


class RevokedSession(models.Model):
    """A signed-out session: access tokens carrying this ``sid`` are refused.

    Kept until the longest-lived token of the session would have expired anyway.
    """

    sid = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="revoked_sessions"
    )
    revoked_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["user", "expires_at"], name="revoked_session_user_exp")]

    def __str__(self) -> str:
        return f"Session {self.sid} of {self.user_id}"
