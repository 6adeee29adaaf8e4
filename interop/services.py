"""Exports: the FHIR R4 bundle of a person's metrics, and the right-of-access export of
everything stored about a person. Both are streamed: rows are read from the database
in chunks and written out piece by piece, so account size does not bound memory.
"""

from __future__ import annotations

import uuid
import zoneinfo
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from django.core.exceptions import ValidationError
from django.utils import timezone

from interop import fhir, selectors
from interop.streaming import json_document_stream
from metrics.models import Source
from users.models import User
from users.selectors import profile_of
from users.serializers import UserProfileSerializer

# Rows fetched per database round trip while streaming.
EXPORT_CHUNK_SIZE = 2000
PERSONAL_EXPORT_FORMAT = "healthtrack.personal-data-export"
PERSONAL_EXPORT_VERSION = 1


def subject_timezone(user: User) -> tzinfo:
    """The person's zone ("a day" is their local day); UTC when unset or unknown."""
    name = profile_of(user).timezone or "UTC"
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def export_window(
    *, since: date | datetime | None, until: date | datetime | None, tz: tzinfo
) -> tuple[datetime | None, datetime | None]:
    """Aware bounds of ``[since, until)``.

    A date means a local day of the person: ``since`` starts at its midnight and
    ``until`` includes it (ends at the next midnight). A datetime without offset is
    local time too. An empty window is a ValidationError naming ``until``.

    The bounds are returned in UTC: a client may write any offset up to ±23:59, and
    PostgreSQL refuses offsets of 16 hours or more in a query parameter. A bound that
    does not exist in UTC (year 0 or 10000) is a 400 naming it.
    """

    def bound(name: str, value: date | datetime, *, days: int = 0) -> datetime:
        try:
            if isinstance(value, datetime):
                moment = value if timezone.is_aware(value) else value.replace(tzinfo=tz)
            else:
                moment = datetime.combine(value + timedelta(days=days), time.min, tzinfo=tz)
            return moment.astimezone(UTC)
        except OverflowError:
            raise ValidationError({name: ["Out of the supported range of dates."]}) from None

    lower = upper = None
    if since is not None:
        lower = bound("since", since)
    if until is not None:
        upper = bound("until", until, days=1)
    if lower is not None and upper is not None and upper <= lower:
        raise ValidationError({"until": ["Must be after since."]})
    return lower, upper


def fhir_bundle_stream(
    *, subject: User, since: datetime | None = None, until: datetime | None = None
) -> Iterator[bytes]:
    """The person's metrics in ``[since, until)`` as a FHIR R4 ``collection`` Bundle:
    their Patient, then one Observation per metric, oldest first."""
    tz = subject_timezone(subject)
    profile = profile_of(subject)
    patient = fhir.patient_resource(
        user_id=subject.pk,
        first_name=subject.first_name,
        last_name=subject.last_name,
        gender=profile.gender,
        birth_date=profile.date_of_birth,
        active=subject.is_active,
    )
    patient_reference = f"urn:uuid:{patient['id']}"
    labels = {value: str(label) for value, label in Source.choices}
    rows = selectors.metric_rows(
        user_id=subject.pk, since=since, until=until, metric_types=fhir.FHIR_MAPPINGS
    ).iterator(chunk_size=EXPORT_CHUNK_SIZE)
    observations = (
        fhir.observation_resource(row, patient_reference=patient_reference, tz=tz, source_labels=labels)
        for row in rows
    )
    return fhir.bundle_stream(
        bundle_id=str(uuid.uuid4()), timestamp=timezone.now(), patient=patient, observations=observations
    )


def _chunked(queryset) -> Iterator[dict]:
    return queryset.iterator(chunk_size=EXPORT_CHUNK_SIZE)


def _care_team(user_id: int) -> Iterator[dict]:
    for row in _chunked(selectors.care_team_rows(user_id=user_id)):
        yield {
            "id": row["id"],
            "role": "patient" if row["patient_id"] == user_id else "clinician",
            "patient_id": row["patient_id"],
            "clinician_id": row["clinician_id"],
            "clinician_username": row["clinician__username"],
            "clinician_first_name": row["clinician__first_name"],
            "clinician_last_name": row["clinician__last_name"],
            "created_at": row["created_at"],
        }


def _audit_events(user_id: int) -> Iterator[dict]:
    for row in _chunked(selectors.audit_rows(user_id=user_id)):
        own = row["actor_id"] == user_id
        yield {
            "id": row["id"],
            "timestamp": row["timestamp"],
            "actor_id": row["actor_id"],
            "actor_username": row["actor__username"],
            "action": row["action"],
            "resource_type": row["resource_type"],
            "object_ids": row["object_ids"],
            "method": row["method"],
            "path": row["path"],
            "status": row["status"],
            # Where another person acted (a clinician, an admin), their address and
            # browser are their personal data, not the subject's.
            "ip": row["ip"] if own else None,
            "user_agent": row["user_agent"] if own else None,
            "request_id": row["request_id"],
        }


def personal_export_stream(*, user: User) -> Iterator[bytes]:
    """Everything stored about ``user`` as one JSON document (right of access).

    The profile comes decrypted and with the API's field names; every list is oldest
    first. Each section is one query, read in chunks while the document is written.
    """
    profile = dict(UserProfileSerializer(user).data)
    account = {
        "is_active": user.is_active,
        "last_login": user.last_login,
        "deactivated_at": user.deactivated_at,
        "roles": selectors.role_names(user_id=user.pk),
    }
    head = {
        "format": PERSONAL_EXPORT_FORMAT,
        "version": PERSONAL_EXPORT_VERSION,
        "generated_at": timezone.now(),
        "user_id": user.pk,
        "profile": profile,
        "account": account,
    }
    sections = [
        ("health_metrics", _chunked(selectors.metric_rows(user_id=user.pk))),
        ("nutrition_logs", _chunked(selectors.nutrition_rows(user_id=user.pk))),
        ("health_goals", _chunked(selectors.goal_rows(user_id=user.pk))),
        ("health_insights", _chunked(selectors.insight_rows(user_id=user.pk))),
        ("care_team", _care_team(user.pk)),
        ("audit_events", _audit_events(user.pk)),
    ]
    return json_document_stream(head, sections)
