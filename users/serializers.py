"""Request and response bodies for accounts and sessions."""

from __future__ import annotations

from datetime import date

from django.core.validators import RegexValidator
from rest_framework import serializers

from healthtrack.serializers import StrictFieldsMixin
from users.models import Gender, validate_timezone

username_validator = RegexValidator(
    r"^[A-Za-z0-9_.+-]{3,150}$",
    "3-150 characters: letters, digits and _ . + - (no @, so it cannot be taken for an email).",
)


def _validate_birth_date(value: date | None) -> date | None:
    if value is not None and (value > date.today() or value.year < 1900):
        raise serializers.ValidationError("Must be a past date after 1900-01-01.")
    return value


class ProfileFieldsMixin(serializers.Serializer):
    first_name = serializers.CharField(max_length=150, allow_blank=True, required=False)
    last_name = serializers.CharField(max_length=150, allow_blank=True, required=False)
    date_of_birth = serializers.DateField(
        source="profile.date_of_birth",
        allow_null=True,
        required=False,
        validators=[_validate_birth_date],
    )
    gender = serializers.ChoiceField(
        source="profile.gender", choices=Gender.choices, allow_blank=True, required=False
    )
    height_cm = serializers.FloatField(
        source="profile.height_cm", min_value=30, max_value=272, allow_null=True, required=False
    )
    occupation = serializers.CharField(
        source="profile.occupation", max_length=120, allow_blank=True, required=False
    )
    medical_history = serializers.CharField(
        source="profile.medical_history",
        max_length=20_000,
        allow_blank=True,
        allow_null=True,
        required=False,
        help_text="Free text; encrypted at rest.",
    )
    timezone = serializers.CharField(
        source="profile.timezone",
        max_length=64,
        required=False,
        validators=[validate_timezone],
        help_text="IANA time zone name; 'a day' in summaries means a day here. Default UTC.",
    )


def flatten_profile(validated: dict) -> dict:
    """``{"profile": {...}, "email": ...}`` (from ``source=``) to one flat dict."""
    flat = {k: v for k, v in validated.items() if k != "profile"}
    flat.update(validated.get("profile", {}))
    if "medical_history" in flat and flat["medical_history"] is None:
        flat["medical_history"] = ""
    return flat


class UserProfileSerializer(StrictFieldsMixin, ProfileFieldsMixin):
    """A profile as clients see it; also the body of PUT/PATCH (never the password)."""

    id = serializers.IntegerField(read_only=True)
    email = serializers.EmailField(max_length=254)
    username = serializers.CharField(read_only=True)
    date_joined = serializers.DateTimeField(read_only=True)

    class Meta:
        fields = (
            "id",
            "email",
            "username",
            "first_name",
            "last_name",
            "date_of_birth",
            "gender",
            "height_cm",
            "occupation",
            "medical_history",
            "timezone",
            "date_joined",
        )

    def get_fields(self):
        fields = super().get_fields()
        return {name: fields[name] for name in self.Meta.fields}

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if data.get("medical_history") is None:
            data["medical_history"] = ""
        if not data.get("timezone"):
            data["timezone"] = "UTC"
        return data


class RegisterSerializer(StrictFieldsMixin, ProfileFieldsMixin):
    email = serializers.EmailField(max_length=254)
    username = serializers.CharField(max_length=150, validators=[username_validator])
    password = serializers.CharField(
        write_only=True, max_length=256, style={"input_type": "password"}, trim_whitespace=False
    )


class TokenObtainSerializer(StrictFieldsMixin, serializers.Serializer):
    username = serializers.CharField(max_length=254, help_text="Username or email address.")
    password = serializers.CharField(max_length=256, write_only=True, trim_whitespace=False)


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField(help_text="Bearer token for API calls.")
    refresh = serializers.CharField(help_text="Single-use token for /auth/token/refresh.")


class TokenRefreshSerializer(StrictFieldsMixin, serializers.Serializer):
    refresh = serializers.CharField()


class PasswordChangeSerializer(StrictFieldsMixin, serializers.Serializer):
    old_password = serializers.CharField(max_length=256, trim_whitespace=False)
    new_password = serializers.CharField(max_length=256, trim_whitespace=False)


class PersonSerializer(serializers.Serializer):
    """Who someone is, without anything from their profile."""

    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(read_only=True)
    first_name = serializers.CharField(read_only=True)
    last_name = serializers.CharField(read_only=True)
    email = serializers.EmailField(read_only=True)


class CareTeamMembershipSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True, help_text="Membership id (for DELETE).")
    clinician = PersonSerializer(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)


class CareTeamGrantSerializer(StrictFieldsMixin, serializers.Serializer):
    clinician = serializers.CharField(
        max_length=254, help_text="Username or email of a clinician to give read access to your data."
    )


class PatientMembershipSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True, help_text="Membership id.")
    patient = PersonSerializer(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
