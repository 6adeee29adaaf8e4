"""Exports: FHIR R4 bundle of a person's metrics; everything stored about oneself.
Imports: a FHIR Bundle of Observations; an Apple Health export upload."""

from __future__ import annotations

from datetime import tzinfo

from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from healthtrack.audit import audit_set
from healthtrack.db import zone_or_utc
from healthtrack.errors import PayloadTooLarge
from healthtrack.models import AuditAction
from healthtrack.permissions import Access, authorize_subject, parse_user_id
from healthtrack.renderers import JSONRenderer
from healthtrack.subjects import subject_from_query, subject_parameter
from interop import selectors, services
from interop.apple_health import AppleHealthFormatError, AppleHealthTooLarge
from interop.fhir import FHIR_JSON
from interop.parsers import DiskMultiPartParser, FhirJSONParser
from interop.serializers import (
    AppleHealthImportResultSerializer,
    AppleHealthUploadSerializer,
    FhirBundleSerializer,
    FhirExportQuerySerializer,
    FhirImportBundleSerializer,
    FhirImportResultSerializer,
    PersonalExportSerializer,
)
from users.selectors import user_is_active

FHIR_RESOURCE = "fhir_bundle"
PERSONAL_RESOURCE = "personal_data"


class FhirJSONRenderer(JSONRenderer):
    """Lets clients ask for ``application/fhir+json``; errors are the usual JSON body."""

    media_type = FHIR_JSON
    format = "fhir"


def _streaming(chunks, *, content_type: str, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(chunks, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"  # health data: never kept by a shared cache
    return response


class FhirExportView(APIView):
    renderer_classes = [JSONRenderer, FhirJSONRenderer]

    @extend_schema(
        tags=["export"],
        summary="A person's metrics as a FHIR R4 Bundle",
        description=(
            "A `collection` Bundle with the person's Patient resource and one Observation per "
            "metric (LOINC codes, UCUM units; see docs/interop.md), oldest first, streamed. "
            "Resource ids, `fullUrl`s and identifiers are stable: exporting again yields the "
            "same ids, so a receiving system does not duplicate what it already has. Owner, a "
            "clinician on the person's care team, or an admin; audited as `export`."
        ),
        parameters=[
            OpenApiParameter("user_id", int, OpenApiParameter.PATH, description="The person's user id."),
            FhirExportQuerySerializer,
        ],
        responses={
            (200, FHIR_JSON): OpenApiResponse(FhirBundleSerializer, description="FHIR R4 Bundle (streamed)."),
        },
    )
    def get(self, request, user_id: int):
        user_id = parse_user_id(user_id)
        authorize_subject(request, user_id, Access.READ, resource_type=FHIR_RESOURCE)
        query = FhirExportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        subject = selectors.export_subject(user_id=user_id)
        if subject is None:
            raise NotFound()
        since, until = services.export_window(
            since=query.validated_data.get("since"),
            until=query.validated_data.get("until"),
            tz=services.subject_timezone(subject),
        )
        audit_set(request, action=AuditAction.EXPORT, resource_type=FHIR_RESOURCE, subject_id=user_id)
        return _streaming(
            services.fhir_bundle_stream(subject=subject, since=since, until=until),
            content_type=FHIR_JSON,
            filename=f"healthtrack-{user_id}-fhir.json",
        )


class PersonalExportView(APIView):
    @extend_schema(
        tags=["export"],
        summary="Everything stored about me (right of access)",
        description=(
            "One JSON document, streamed: profile (decrypted), account, metrics, nutrition logs, "
            "goals, insights, care-team memberships and the audit events about the caller's "
            "data, each list oldest first. Audited as `export`."
        ),
        responses={200: PersonalExportSerializer},
    )
    def get(self, request):
        user = selectors.export_subject(user_id=request.user.pk)
        if user is None:
            raise NotFound()
        audit_set(request, action=AuditAction.EXPORT, resource_type=PERSONAL_RESOURCE, subject_id=user.pk)
        return _streaming(
            services.personal_export_stream(user=user),
            content_type="application/json",
            filename=f"healthtrack-{user.pk}-export.json",
        )


# --- Imports --------------------------------------------------------------------------------

METRIC_RESOURCE = "metric"
APPLE_HEALTH_RESOURCE = "apple_health_import"
IMPORT_TAGS = ["health-metrics"]


def _import_subject(request, *, resource_type: str) -> tuple[int, tzinfo]:
    """Whose data an import writes, and their time zone: the caller, or ``user_id`` for a
    superuser (an id naming no active account is a 404). Anyone else's id, also a
    care-team clinician's patient, is an audited 404: clinicians never write."""
    user_id, tz_name = subject_from_query(request, Access.WRITE, resource_type=resource_type)
    if user_id != request.user.pk and not user_is_active(user_id=user_id):
        raise NotFound()
    return user_id, zone_or_utc(tz_name)


class _AlwaysJSON:
    """Answer JSON whatever the Accept header says: a FHIR client sending
    ``Accept: application/fhir+json`` gets the import report rather than a 406."""

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)


class FhirImportView(_AlwaysJSON, APIView):
    parser_classes = [JSONParser, FhirJSONParser]
    max_body_bytes = services.FHIR_IMPORT_MAX_BODY_BYTES

    @extend_schema(
        tags=IMPORT_TAGS,
        operation_id="health_metrics_import_fhir",
        summary="Import a FHIR R4 Bundle of Observations",
        description=(
            "Maps each Observation with a LOINC code from the table in docs/interop.md (heart rate, "
            "resting heart rate, steps, sleep, weight, blood pressure panel, glucose, SpO2, body "
            "temperature, exercise) to a metric, converting UCUM units, and stores it as POST "
            "/api/v1/health-metrics/bulk would (source `fhir`), all in one transaction. Times without "
            "an offset, and dates alone (local noon), are in the person's time zone. The answer is "
            "the bulk report; `errors[].index` is the entry's index in `Bundle.entry` and `field` a "
            "path in that entry. Idempotent: an Observation whose identifier (`system|value`, else "
            "its id, else the entry's fullUrl) is already stored counts as a duplicate, so posting "
            "the same Bundle again stores nothing. Entries that are not Observations are passed over. "
            f"At most {services.FHIR_IMPORT_MAX_ENTRIES} entries and "
            f"{services.FHIR_IMPORT_MAX_BODY_BYTES} bytes (413 beyond). The owner, or a superuser "
            "with `user_id`; audited as one `create`. 201 when something was stored, else 200."
        ),
        parameters=[subject_parameter("import into")],
        request={"application/json": FhirImportBundleSerializer, FHIR_JSON: FhirImportBundleSerializer},
        responses={
            201: OpenApiResponse(FhirImportResultSerializer, description="At least one metric stored."),
            200: OpenApiResponse(FhirImportResultSerializer, description="Nothing new stored."),
        },
    )
    def post(self, request):
        user_id, tz = _import_subject(request, resource_type=METRIC_RESOURCE)
        # Audited from here on, so a refused Bundle (400, 413) is on the trail too.
        audit_set(request, action=AuditAction.CREATE, resource_type=METRIC_RESOURCE, subject_id=user_id)
        result = services.fhir_import(user_id=user_id, bundle=request.data, tz=tz)
        audit_set(
            request,
            action=AuditAction.CREATE,
            resource_type=METRIC_RESOURCE,
            subject_id=user_id,
            object_ids=result.created_ids,
        )
        return Response(
            result.as_dict(), status=status.HTTP_201_CREATED if result.created_ids else status.HTTP_200_OK
        )


def _uploaded_export(request):
    """The one file of the ``file`` form field; 400 naming the field otherwise."""
    unknown = sorted(set(request.data) - {"file"})
    if unknown:
        raise ValidationError({name: ["Unknown field; send only the file."] for name in unknown})
    files = request.FILES.getlist("file")
    if len(files) != 1:
        message = (
            "Upload one file."
            if files
            else "Upload the export (export.zip or export.xml) as the form field file."
        )
        raise ValidationError({"file": [message]})
    return files[0]


class AppleHealthImportView(_AlwaysJSON, APIView):
    parser_classes = [DiskMultiPartParser]
    max_body_bytes = services.APPLE_HEALTH_MAX_UPLOAD_BYTES

    @extend_schema(
        tags=IMPORT_TAGS,
        operation_id="health_metrics_import_apple_health",
        summary="Import an Apple Health export (export.zip or export.xml)",
        description=(
            "A multipart/form-data upload with the Health app's export in the field `file`: the "
            "export.zip (its apple_health_export/export.xml is read without unpacking) or the "
            "export.xml itself. The upload streams to a temporary file and is parsed as a stream, "
            "in constant memory; records are stored 1,000 at a time through the metrics and "
            "nutrition bulk paths, all in one transaction: a file found malformed part-way stores "
            "nothing (400 naming `file`). Heart rate, resting heart rate, weight, blood pressure, "
            "glucose, SpO2, temperature and workouts become one metric each; steps and sleep one "
            "metric per day/night; water and food one nutrition log per day (docs/interop.md). "
            "Re-importing stores nothing new, except that daily totals a later export recounts "
            "are updated. The answer counts what was created, updated, duplicate or refused (the "
            f"first {services.IMPORT_ERRORS_SHOWN} refusals listed), per type, and what was skipped and "
            f"why. At most {services.APPLE_HEALTH_MAX_UPLOAD_BYTES} bytes uploaded and "
            f"{services.APPLE_HEALTH_MAX_XML_BYTES} bytes of XML unpacked (413 beyond). Large exports "
            "take minutes: `manage.py import_apple_health` does the same from a file on the server. "
            "The owner, or a superuser with `user_id`; audited as one `create`. 201 when something was "
            "stored or updated, else 200."
        ),
        parameters=[subject_parameter("import into")],
        request={"multipart/form-data": AppleHealthUploadSerializer},
        responses={
            201: OpenApiResponse(
                AppleHealthImportResultSerializer, description="Something stored or updated."
            ),
            200: OpenApiResponse(AppleHealthImportResultSerializer, description="Nothing new stored."),
        },
    )
    def post(self, request):
        user_id, _ = _import_subject(request, resource_type=APPLE_HEALTH_RESOURCE)
        audit_set(request, action=AuditAction.CREATE, resource_type=APPLE_HEALTH_RESOURCE, subject_id=user_id)
        upload = _uploaded_export(request)
        try:
            result = services.apple_health_import(
                user_id=user_id, source=upload, max_xml_bytes=services.APPLE_HEALTH_MAX_XML_BYTES
            )
        except AppleHealthTooLarge as error:
            raise PayloadTooLarge(
                f"The unpacked export.xml is over the limit of {error.limit} bytes."
            ) from None
        except AppleHealthFormatError as error:
            raise ValidationError({"file": [str(error)]}) from None
        finally:
            upload.close()
        audit_set(
            request,
            action=AuditAction.CREATE,
            resource_type=APPLE_HEALTH_RESOURCE,
            subject_id=user_id,
            object_ids=result.object_ids,
        )
        return Response(
            result.as_dict(), status=status.HTTP_201_CREATED if result.changed else status.HTTP_200_OK
        )
