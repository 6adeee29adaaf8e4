"""Exports: the FHIR R4 bundle of a person's metrics, and the right-of-access export of
everything stored about a person. Both are streamed: rows are read from the database
in chunks and written out piece by piece, so account size does not bound memory.

Imports: a FHIR Bundle of Observations, an Apple Health export; written through the
metrics and nutrition bulk paths in batches, one transaction per import.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connections, reset_queries, router, transaction
from django.utils import timezone

from healthtrack.audit import MAX_OBJECT_IDS
from healthtrack.cache import user_data_version_bump
from healthtrack.db import zone_or_utc
from healthtrack.errors import PayloadTooLarge
from healthtrack.models import AuditAction, AuditEvent
from interop import fhir, selectors
from interop.apple_health import AppleHealthSummary, is_daily_total, iter_apple_health
from interop.records import MetricSample
from interop.streaming import json_document_stream
from metrics.models import HealthMetric, Source
from metrics.services import metric_bulk_ingest, metric_data_changed
from metrics.validation import BULK_MAX_SAMPLES
from nutrition.services import nutrition_log_bulk_create
from users.models import User
from users.selectors import profile_of
from users.serializers import UserProfileSerializer

# Rows fetched per database round trip while streaming.
EXPORT_CHUNK_SIZE = 2000
PERSONAL_EXPORT_FORMAT = "healthtrack.personal-data-export"
PERSONAL_EXPORT_VERSION = 1


def subject_timezone(user: User) -> tzinfo:
    """The person's zone ("a day" is their local day); UTC when unset or unknown."""
    return zone_or_utc(profile_of(user).timezone)


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


# --- Imports -------------------------------------------------------------------------------
#
# Both imports write through the owning apps' bulk paths (metrics.services.metric_bulk_ingest,
# nutrition.services.nutrition_log_bulk_create), so a sample is validated and deduplicated
# exactly as the bulk API would. Each import is one transaction: all of it is stored or
# none of it (a file that turns out malformed half-way stores nothing). The cache bump and
# the goals' follow-up run once, at the end, not per batch.

# Samples per bulk-ingest call: the bulk API's own limit, so each batch is one look-up and
# one INSERT whatever the size of the import.
IMPORT_BATCH_SIZE = BULK_MAX_SAMPLES
FHIR_IMPORT_MAX_ENTRIES = 10_000
FHIR_IMPORT_MAX_BODY_BYTES = 10 * 1024 * 1024
APPLE_HEALTH_MAX_UPLOAD_BYTES = 200 * 1024 * 1024
# An export.zip unpacks to 10-20 times its size; the cap stops a zip bomb, not real exports.
APPLE_HEALTH_MAX_XML_BYTES = 4 * 1024 * 1024 * 1024
# Problems listed in an Apple Health import summary (all are counted).
IMPORT_ERRORS_SHOWN = 100

# Where a sample field the bulk-ingest service refused lives in a FHIR Observation.
_FHIR_PATHS = {
    "recorded_at": "resource.effective[x]",
    "notes": "resource.note",
    "value": "resource.valueQuantity.value",
    "secondary_value": "resource.component",
    "external_id": "resource.identifier",
    "metric_type": "resource.code",
    "unit": "resource.valueQuantity.code",
}


def _serialize_imports_of(user_id: int) -> None:
    """Make a second import for the same person wait until the first one commits.

    Two imports of overlapping data (the same export uploaded twice at once) insert the
    same sync ids, possibly in different orders, each in one long transaction: PostgreSQL
    would make one of them fail with a deadlock. Under a transaction-scoped advisory lock
    the second one waits, then finds the first one's rows stored (duplicates). SQLite
    runs one writing transaction at a time anyway.
    """
    connection = connections[router.db_for_write(HealthMetric)]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"healthtrack.import:{user_id}"]
            )


@dataclass
class FhirImportResult:
    created_ids: list[int] = field(default_factory=list)
    duplicates: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The bulk-ingest report: ``{created, duplicates, errors: [{index, field, message}]}``."""
        return {"created": len(self.created_ids), "duplicates": self.duplicates, "errors": self.errors}


def fhir_import(*, user_id: int, bundle: Any, tz: tzinfo, now: datetime | None = None) -> FhirImportResult:
    """Store the Observations of a FHIR Bundle as ``user_id``'s metrics.

    Each entry is mapped by ``fhir.parse_observation_bundle`` (times without an offset are
    in ``tz``, the person's zone) and stored through ``metric_bulk_ingest`` in batches, all
    in one transaction. Errors carry the index of the Bundle entry. An Observation whose
    identifier is already stored is a duplicate: re-posting a Bundle stores nothing new.
    Entries that are not Observations (the Patient of an export) are passed over.

    Raises ValidationError naming the field when the document is not a Bundle with a list
    of entries, and PayloadTooLarge beyond ``FHIR_IMPORT_MAX_ENTRIES`` entries.
    """
    if isinstance(bundle, Mapping) and bundle.get("resourceType") == "Bundle":
        entries = bundle.get("entry")
        if isinstance(entries, list) and len(entries) > FHIR_IMPORT_MAX_ENTRIES:
            raise PayloadTooLarge(
                f"At most {FHIR_IMPORT_MAX_ENTRIES} entries per Bundle; got {len(entries)}. Split the Bundle."
            )
    try:
        parsed = fhir.parse_observation_bundle(bundle, default_timezone=tz)
    except fhir.FhirBundleError as error:
        raise ValidationError({error.field: [error.message]}) from None
    result = FhirImportResult(errors=[error.as_dict() for error in parsed.errors])
    changed: set[str] = set()
    now = now or timezone.now()
    with transaction.atomic():
        _serialize_imports_of(user_id)
        for start in range(0, len(parsed.entries), IMPORT_BATCH_SIZE):
            batch = parsed.entries[start : start + IMPORT_BATCH_SIZE]
            ingested = metric_bulk_ingest(
                user_id=user_id, samples=[sample.as_ingest() for _, sample in batch], now=now, notify=False
            )
            result.created_ids += ingested.created_ids
            result.duplicates += ingested.duplicates
            changed |= ingested.changed_types
            result.errors += [
                {
                    "index": batch[error["index"]][0],
                    "field": _FHIR_PATHS.get(error["field"], "resource"),
                    "message": error["message"],
                }
                for error in ingested.errors
            ]
        if changed:
            metric_data_changed(user_id=user_id, metric_types=changed)
    result.errors.sort(key=lambda error: error["index"])  # stable: an entry's errors keep their order
    return result


@dataclass
class ImportTally:
    """What an import did with one kind of record (metrics or nutrition logs)."""

    created: int = 0
    updated: int = 0
    duplicates: int = 0
    error_count: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)  # the first IMPORT_ERRORS_SHOWN

    def add_errors(
        self, errors: Iterable[dict[str, Any]], records: Sequence[dict[str, Any]], kind: str
    ) -> None:
        for error in errors:
            self.error_count += 1
            if len(self.errors) < IMPORT_ERRORS_SHOWN:
                record = records[error["index"]]
                self.errors.append(
                    {
                        "type": record[kind],
                        "external_id": record["external_id"],
                        "recorded_at": record["recorded_at" if kind == "metric_type" else "logged_at"],
                        "field": error["field"],
                        "message": error["message"],
                    }
                )

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "duplicates": self.duplicates,
            "error_count": self.error_count,
            "errors": self.errors,
        }


@dataclass
class AppleHealthImportResult:
    summary: AppleHealthSummary = field(default_factory=AppleHealthSummary)
    metrics: ImportTally = field(default_factory=ImportTally)
    nutrition: ImportTally = field(default_factory=ImportTally)
    dry_run: bool = False
    # For the audit trail: ``metric:<id>`` / ``nutrition:<id>`` of rows created or
    # updated, the first audit.MAX_OBJECT_IDS of them.
    object_ids: list[str] = field(default_factory=list)
    changed_types: set[str] = field(default_factory=set)

    @property
    def changed(self) -> bool:
        return bool(
            self.metrics.created or self.metrics.updated or self.nutrition.created or self.nutrition.updated
        )

    def note_ids(self, kind: str, ids: Iterable[int]) -> None:
        room = MAX_OBJECT_IDS - len(self.object_ids)
        if room > 0:
            self.object_ids += [f"{kind}:{pk}" for pk in list(ids)[:room]]

    def as_dict(self) -> dict[str, Any]:
        parsed = self.summary.as_dict()
        return {
            "dry_run": self.dry_run,
            "export_date": parsed["export_date"],
            "records_read": parsed["records_read"],
            "metrics": self.metrics.as_dict(),
            "nutrition": self.nutrition.as_dict(),
            "per_type": {"metrics": parsed["metrics"], "nutrition": parsed["nutrition"]},
            "skipped": parsed["skipped"],
        }


def apple_health_import(
    *,
    user_id: int,
    source: str | os.PathLike | IO[bytes],
    dry_run: bool = False,
    on_progress: Callable[[AppleHealthImportResult], None] | None = None,
    progress_every: int = 10_000,
    max_xml_bytes: int | None = APPLE_HEALTH_MAX_XML_BYTES,
    batch_size: int = IMPORT_BATCH_SIZE,
    now: datetime | None = None,
) -> AppleHealthImportResult:
    """Import an Apple Health ``export.xml`` or ``export.zip`` (a path or a seekable binary
    file) for ``user_id``.

    The file is stream-parsed (``iter_apple_health``) and its records are written as they
    come, ``batch_size`` at a time: metric samples through ``metric_bulk_ingest``, daily
    water and food totals through ``nutrition_log_bulk_create``. Memory does not grow with
    the size of the file. A record already imported is a duplicate (re-importing the same
    export stores nothing new), except the daily totals (``hk:steps|sleep|water|food:<day>``):
    a later export recounts those days, so a stored total whose value changed is updated.

    All or nothing: the import is one transaction, and an export found malformed part-way
    (``AppleHealthFormatError``, raised to the caller) leaves nothing stored. ``dry_run``
    does all the work, reports what would be stored, and rolls it back. The data version
    bump and the goals' follow-up run once, at the end. ``on_progress(result)`` is called
    every ``progress_every`` records read.
    """
    result = AppleHealthImportResult(dry_run=dry_run)
    now = now or timezone.now()
    metric_batch: list[dict[str, Any]] = []
    nutrition_batch: list[dict[str, Any]] = []

    def write_metrics() -> None:
        _forget_logged_queries()
        ingested = metric_bulk_ingest(
            user_id=user_id, samples=metric_batch, now=now, update_existing=is_daily_total, notify=False
        )
        tally = result.metrics
        tally.created += len(ingested.created_ids)
        tally.updated += len(ingested.updated_ids)
        tally.duplicates += ingested.duplicates
        tally.add_errors(ingested.errors, metric_batch, "metric_type")
        result.changed_types |= ingested.changed_types
        result.note_ids("metric", [*ingested.created_ids, *ingested.updated_ids])
        metric_batch.clear()

    def write_nutrition() -> None:
        written = nutrition_log_bulk_create(
            user_id=user_id, entries=nutrition_batch, now=now, update_existing=is_daily_total, notify=False
        )
        tally = result.nutrition
        tally.created += len(written.created_ids)
        tally.updated += len(written.updated_ids)
        tally.duplicates += written.duplicates
        tally.add_errors(written.errors, nutrition_batch, "meal_type")
        result.note_ids("nutrition", [*written.created_ids, *written.updated_ids])
        nutrition_batch.clear()

    progress = (lambda _summary: on_progress(result)) if on_progress is not None else None
    with transaction.atomic():
        _serialize_imports_of(user_id)
        records = iter_apple_health(
            source,
            summary=result.summary,
            on_progress=progress,
            progress_every=progress_every,
            max_xml_bytes=max_xml_bytes,
        )
        for record in records:
            if isinstance(record, MetricSample):
                metric_batch.append(record.as_ingest())
                if len(metric_batch) >= batch_size:
                    write_metrics()
            else:
                nutrition_batch.append(record.as_log_fields())
                if len(nutrition_batch) >= batch_size:
                    write_nutrition()
        if metric_batch:
            write_metrics()
        if nutrition_batch:
            write_nutrition()
        if dry_run:
            transaction.set_rollback(True)
        elif result.changed_types:
            metric_data_changed(user_id=user_id, metric_types=result.changed_types)
        elif result.changed:
            user_data_version_bump(user_id=user_id)
    return result


def _forget_logged_queries() -> None:
    """With DEBUG on (development), Django keeps the last 9,000 queries, and each of an
    import's holds a whole batch as SQL: hundreds of megabytes for a large export. An
    import forgets them batch by batch (never with DEBUG off: tests count queries)."""
    if settings.DEBUG:
        reset_queries()


def import_audit_record(*, user_id: int, resource_type: str, object_ids: Sequence[str], path: str) -> None:
    """One audit row for an import run outside a request (``manage.py``): no actor,
    the person as subject, the command as path."""
    AuditEvent.objects.create(
        actor_id=None,
        subject_id=user_id,
        action=AuditAction.CREATE,
        resource_type=resource_type,
        object_ids=list(object_ids)[:MAX_OBJECT_IDS],
        path=path[:255],
    )
