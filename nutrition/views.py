"""Meals and water: thin views over nutrition.services and nutrition.selectors."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from healthtrack.audit import audit_set
from healthtrack.models import AuditAction
from healthtrack.pagination import LimitSkipPagination
from healthtrack.permissions import Access, authorize_subject, parse_user_id
from healthtrack.subjects import subject_from_query, subject_parameter
from nutrition import selectors, services
from nutrition.models import NutritionLog
from nutrition.serializers import (
    NutritionLogListQuerySerializer,
    NutritionLogSerializer,
    NutritionSummaryQuerySerializer,
    NutritionSummarySerializer,
    nutrition_log_as_dict,
)

RESOURCE = "nutrition"
TAGS = ["nutrition"]

LOG_ID = OpenApiParameter(
    "log_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Id of the nutrition log."
)
USER_ID = OpenApiParameter(
    "user_id",
    OpenApiTypes.INT,
    OpenApiParameter.PATH,
    description="Whose nutrition logs: the caller, a care-team patient (clinicians) or anyone (admins).",
)


_serialize = nutrition_log_as_dict


class NutritionLogCreateView(APIView):
    @extend_schema(
        tags=TAGS,
        summary="Log a meal, snack or water",
        description="Stores one entry for the caller (or for `user_id`, admins only). "
        "Re-posting an entry with the same (`source`, `external_id`) returns the stored one "
        "with 200 and writes nothing.",
        parameters=[subject_parameter("log for")],
        request=NutritionLogSerializer,
        responses={
            201: NutritionLogSerializer,
            200: OpenApiResponse(NutritionLogSerializer, description="Already stored: the stored entry."),
        },
    )
    def post(self, request):
        subject_id, _ = subject_from_query(request, Access.WRITE, resource_type=RESOURCE)
        audit_set(request, action=AuditAction.CREATE, resource_type=RESOURCE, subject_id=subject_id)
        serializer = NutritionLogSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        log, created = services.nutrition_log_create(user_id=subject_id, **serializer.validated_data)
        audit_set(
            request,
            action=AuditAction.CREATE if created else AuditAction.READ,
            resource_type=RESOURCE,
            subject_id=subject_id,
            object_ids=[log.pk],
        )
        return Response(_serialize(log), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


@extend_schema(parameters=[LOG_ID])
class NutritionLogDetailView(APIView):
    def _get(self, request, log_id, access: Access, action: str) -> NutritionLog:
        """The object, once the caller may ``access`` it; the request is audited as ``action``
        from here on, so a refused change (400) is on the trail too."""
        log = selectors.nutrition_log_get(log_id=parse_user_id(log_id))
        if log is None:
            raise NotFound()
        authorize_subject(request, log.user_id, access, resource_type=RESOURCE, object_ids=[log.pk])
        audit_set(request, action=action, resource_type=RESOURCE, subject_id=log.user_id, object_ids=[log.pk])
        return log

    def _update(self, request, log_id, *, partial: bool) -> Response:
        log = self._get(request, log_id, Access.WRITE, AuditAction.UPDATE)
        serializer = NutritionLogSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        log = services.nutrition_log_update(log=log, changes=serializer.validated_data)
        return Response(_serialize(log))

    @extend_schema(tags=TAGS, summary="One nutrition log", responses={200: NutritionLogSerializer})
    def get(self, request, log_id: int):
        log = self._get(request, log_id, Access.READ, AuditAction.READ)
        return Response(_serialize(log))

    @extend_schema(
        tags=TAGS,
        summary="Replace a nutrition log",
        description="`meal_type` is required; optional fields left out keep their value (send "
        "null to clear a nutrient). `source` and `external_id` cannot change.",
        request=NutritionLogSerializer,
        responses={200: NutritionLogSerializer},
    )
    def put(self, request, log_id: int):
        return self._update(request, log_id, partial=False)

    @extend_schema(
        tags=TAGS,
        summary="Change a nutrition log",
        description="The result is validated as a whole (still at least one nutrient, water "
        "entries keep `water_ml`). `source` and `external_id` cannot change.",
        request=NutritionLogSerializer,
        responses={200: NutritionLogSerializer},
    )
    def patch(self, request, log_id: int):
        return self._update(request, log_id, partial=True)

    @extend_schema(
        tags=TAGS, summary="Delete a nutrition log", responses={204: OpenApiResponse(description="Deleted.")}
    )
    def delete(self, request, log_id: int):
        log = self._get(request, log_id, Access.WRITE, AuditAction.DELETE)
        services.nutrition_log_delete(log=log)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(parameters=[USER_ID])
class NutritionLogUserListView(GenericAPIView):
    pagination_class = LimitSkipPagination
    serializer_class = NutritionLogSerializer

    @extend_schema(
        tags=TAGS,
        summary="A user's nutrition logs",
        description="Most recent first (`logged_at` descending), 50 per page by default.",
        parameters=[NutritionLogListQuerySerializer],
        operation_id="nutrition_logs_user_list",
        responses={200: NutritionLogSerializer(many=True)},
    )
    def get(self, request, user_id: int):
        subject_id = authorize_subject(request, parse_user_id(user_id), Access.READ, resource_type=RESOURCE)
        audit_set(request, action=AuditAction.READ, resource_type=RESOURCE, subject_id=subject_id)
        filters = NutritionLogListQuerySerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        page = self.paginate_queryset(
            selectors.nutrition_logs_of(user_id=subject_id, **filters.validated_data)
        )
        audit_set(
            request,
            action=AuditAction.READ,
            resource_type=RESOURCE,
            subject_id=subject_id,
            object_ids=[log.pk for log in page],
        )
        return self.get_paginated_response([_serialize(log) for log in page])


class NutritionSummaryView(APIView):
    @extend_schema(
        tags=TAGS,
        summary="Daily nutrition totals",
        description="Calories, macros and water summed per local day (the user's time zone) "
        "over the last `days` days, today included. Computed in the database and cached under "
        "the user's data version, so any write shows in the next answer.",
        parameters=[NutritionSummaryQuerySerializer, subject_parameter("summarise")],
        responses={200: NutritionSummarySerializer},
    )
    def get(self, request):
        subject_id, tz = subject_from_query(request, Access.READ, resource_type=RESOURCE)
        audit_set(request, action=AuditAction.READ, resource_type=RESOURCE, subject_id=subject_id)
        query = NutritionSummaryQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        summary = selectors.nutrition_summary(user_id=subject_id, tz=tz, days=query.validated_data["days"])
        return Response(summary)
