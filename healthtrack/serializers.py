"""Serializer pieces every app uses."""

from __future__ import annotations

import datetime

from rest_framework import serializers


def unstorable_text(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None: PostgreSQL text and jsonb cannot hold NUL,
    and a lone surrogate (a legal JSON string escape) is not UTF-8 at all. DRF's
    ``CharField`` refuses both; this is for text validated without it (metrics'
    ``sample_clean``, free-form JSON). The messages are DRF's."""
    if "\x00" in text:
        return "Null characters are not allowed."
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return f"Surrogate characters are not allowed: U+{ord(text[error.start]):X}."
    return None


def iso_datetime(value: datetime.datetime | None) -> str | None:
    """Like DRF's DateTimeField output: ISO 8601, UTC written as ``Z``.

    For hand-written row-to-dict functions on list routes, where a serializer per row
    costs far more than the query (a nutrition page of 50 took 20 ms of CPU)."""
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class StrictFieldsMixin:
    """Refuse keys the serializer does not know, so typos and privilege fields
    (``is_staff``, ``user_id`` ...) are a 400 naming them instead of silently ignored.
    Read-only fields of the representation are accepted and ignored, so a client may
    PUT back what it got. The OpenAPI request schema says ``additionalProperties: false``
    (``healthtrack.openapi``)."""

    refuses_unknown_fields = True

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: ["Unknown field; it cannot be set."] for name in unknown}
                )
        return super().to_internal_value(data)


class ErrorSerializer(serializers.Serializer):
    """The body of every error response."""

    detail = serializers.CharField(help_text="What went wrong, in a sentence.")
    code = serializers.CharField(help_text="Stable machine-readable error code.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Validation errors: field (dotted path for nested fields) to reasons.",
    )
