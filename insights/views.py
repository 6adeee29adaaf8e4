"""Recommendations and stored insights: thin views over insights.services and selectors."""

from __future__ import annotations

import re

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from healthtrack.audit import audit_deny, audit_set
from healthtrack.cached_reads import CachedRead, plain_int
from healthtrack.models import AuditAction
from healthtrack.pagination import LimitSkipPagination
from healthtrack.permissions import Access, authorize_subject, is_admin, is_clinician, parse_user_id
from insights import selectors, services
from insights.models import HealthInsight
from insights.serializers import (
    HealthInsightCreateSerializer,
    HealthInsightReadStateSerializer,
    HealthInsightSerializer,
    InsightListQuerySerializer,
    RecommendationQuerySerializer,
    RecommendationsResponseSerializer,
)

INSIGHT = "insight"
RECOMMENDATION = "recommendation"


def _user_id_or_none(raw) -> int | None:
    """A user id for the audit trail from unvalidated input, if it is one."""
    try:
        return parse_user_id(raw)
    except NotFound:
        return None


class RecommendationsView(APIView):
    @extend_schema(
        tags=["insights"],
        summary="Top five recommendations for a person",
        description=(
            "Ranked, explained recommendations from the person's last `days` local days of "
            "metrics, meals, water and goals. Cached for REDIS_CACHE_EXPIRE_INSIGHTS seconds per "
            "person and `days`; any new metric, meal or goal change makes the next call fresh. "
            "The person, clinicians on their care team and administrators may read them."
        ),
        parameters=[RecommendationQuerySerializer],
        responses={200: RecommendationsResponseSerializer},
    )
    def get(self, request, user_id: int):
        user_id = parse_user_id(user_id)
        query = RecommendationQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        authorize_subject(request, user_id, Access.READ, resource_type=RECOMMENDATION)
        body, _ = services.recommendations_body(
            user_id=user_id, days=query.validated_data["days"], use_cache=query.validated_data["use_cache"]
        )
        audit_set(request, action=AuditAction.READ, resource_type=RECOMMENDATION, subject_id=user_id)
        # The cached body is served as stored: no serializer, no renderer on a cache hit.
        return HttpResponse(body, content_type="application/json")


def _recommendations_entry(query) -> tuple[str, tuple] | None:
    days = plain_int(
        query.get("days"), default=services.DEFAULT_WINDOW_DAYS, low=1, high=services.MAX_WINDOW_DAYS
    )
    use_cache = query.get("use_cache")
    if days is None or (use_cache is not None and use_cache not in serializers.BooleanField.TRUE_VALUES):
        return None
    return services.RECOMMENDATIONS_CACHE_NAME, (days,)


# Cache hits of RecommendationsView answered by healthtrack.cached_reads.
recommendations_cached_read = CachedRead(
    path=re.compile(r"/api/v1/recommendations/(?P<user_id>[0-9]+)"),
    view=RecommendationsView,
    view_name="recommendations",
    resource_type=RECOMMENDATION,
    entry=_recommendations_entry,
    body=lambda body, snapshot: body,
    query_names=frozenset({"days", "use_cache"}),
)


class HealthInsightCreateView(APIView):
    @extend_schema(
        tags=["insights"],
        summary="Write an insight for a person",
        description=(
            "For clinicians on the person's care team and administrators (403 for anyone else, "
            "and for oneself). `created_by` is the caller."
        ),
        request=HealthInsightCreateSerializer,
        responses={201: HealthInsightSerializer},
    )
    def post(self, request):
        if not (is_admin(request.user) or is_clinician(request.user)):
            raw = request.data.get("user_id") if isinstance(request.data, dict) else None
            audit_deny(request, resource_type=INSIGHT, subject_id=_user_id_or_none(raw))
            raise PermissionDenied("Only clinicians and administrators can write insights.")
        serializer = HealthInsightCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        user_id = parse_user_id(data.pop("user_id"))
        authorize_subject(request, user_id, Access.ANNOTATE, resource_type=INSIGHT)
        try:
            insight = services.insight_create(author=request.user, user_id=user_id, data=data)
        except (PermissionDenied, NotFound):
            audit_deny(request, resource_type=INSIGHT, subject_id=user_id)
            raise
        audit_set(
            request,
            action=AuditAction.CREATE,
            resource_type=INSIGHT,
            subject_id=user_id,
            object_ids=[insight.pk],
        )
        return Response(HealthInsightSerializer(insight).data, status=status.HTTP_201_CREATED)


class HealthInsightDetailView(APIView):
    def _get(self, request, insight_id) -> HealthInsight:
        insight_id = parse_user_id(insight_id)
        insight = selectors.insight_get(insight_id=insight_id)
        if insight is None:
            raise NotFound()
        authorize_subject(
            request, insight.user_id, Access.READ, resource_type=INSIGHT, object_ids=[insight.pk]
        )
        return insight

    @extend_schema(tags=["insights"], summary="One insight", responses={200: HealthInsightSerializer})
    def get(self, request, insight_id: int):
        insight = self._get(request, insight_id)
        audit_set(
            request,
            action=AuditAction.READ,
            resource_type=INSIGHT,
            subject_id=insight.user_id,
            object_ids=[insight.pk],
        )
        return Response(HealthInsightSerializer(insight).data)

    @extend_schema(
        tags=["insights"],
        summary="Mark an insight read or unread",
        description="Only the person it is about; `is_read` is the only field that can change.",
        request=HealthInsightReadStateSerializer,
        responses={200: HealthInsightSerializer},
    )
    def patch(self, request, insight_id: int):
        insight = self._get(request, insight_id)
        if request.user.pk != insight.user_id:
            audit_deny(request, resource_type=INSIGHT, subject_id=insight.user_id, object_ids=[insight.pk])
            raise PermissionDenied("Only the person an insight is about can mark it read.")
        serializer = HealthInsightReadStateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        insight = services.insight_mark_read(insight=insight, is_read=serializer.validated_data["is_read"])
        audit_set(
            request,
            action=AuditAction.UPDATE,
            resource_type=INSIGHT,
            subject_id=insight.user_id,
            object_ids=[insight.pk],
        )
        return Response(HealthInsightSerializer(insight).data)


class UserInsightListView(GenericAPIView):
    pagination_class = LimitSkipPagination
    serializer_class = HealthInsightSerializer

    @extend_schema(
        tags=["insights"],
        summary="A person's insights, newest first",
        parameters=[
            OpenApiParameter(
                "is_read", bool, description="Only read (true) or unread (false) insights; default all."
            )
        ],
        responses={200: HealthInsightSerializer(many=True)},
    )
    def get(self, request, user_id: int):
        user_id = parse_user_id(user_id)
        query = InsightListQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        authorize_subject(request, user_id, Access.READ, resource_type=INSIGHT)
        if (
            is_admin(request.user)
            and user_id != request.user.pk
            and not selectors.user_exists(user_id=user_id)
        ):
            raise NotFound()  # an administrator asking for nobody (a care team implies the person)
        page = self.paginate_queryset(
            selectors.insight_list_for_user(user_id=user_id, is_read=query.validated_data.get("is_read"))
        )
        audit_set(
            request,
            action=AuditAction.READ,
            resource_type=INSIGHT,
            subject_id=user_id,
            object_ids=[insight.pk for insight in page],
        )
        return self.get_paginated_response(HealthInsightSerializer(page, many=True).data)
