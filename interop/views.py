"""Exports: FHIR R4 bundle of a person's metrics; everything stored about oneself."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.views import APIView

from healthtrack.audit import audit_set
from healthtrack.models import AuditAction
from healthtrack.permissions import Access, authorize_subject, parse_user_id
from healthtrack.renderers import JSONRenderer
from interop import selectors, services
from interop.fhir import FHIR_JSON
from interop.serializers import FhirBundleSerializer, FhirExportQuerySerializer, PersonalExportSerializer

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
