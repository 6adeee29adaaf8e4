"""Goals: thin views over goals.services and goals.selectors."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from goals import selectors, services
from goals.models import HealthGoal
from goals.serializers import (
    HealthGoalCreateSerializer,
    HealthGoalListQuerySerializer,
    HealthGoalSerializer,
    HealthGoalUpdateSerializer,
    goal_as_dict,
)
from healthtrack.audit import audit_set
from healthtrack.models import AuditAction
from healthtrack.pagination import LimitSkipPagination
from healthtrack.permissions import Access, authorize_subject, parse_user_id
from healthtrack.subjects import subject_from_query, subject_parameter

RESOURCE = "goal"
TAGS = ["goals"]

GOAL_ID = OpenApiParameter("goal_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Id of the goal.")
USER_ID = OpenApiParameter(
    "user_id",
    OpenApiTypes.INT,
    OpenApiParameter.PATH,
    description="Whose goals: the caller, a care-team patient (clinicians) or anyone (admins).",
)


_serialize = goal_as_dict


class HealthGoalCreateView(APIView):
    @extend_schema(
        tags=TAGS,
        summary="Create a goal",
        description="Creates an active goal for the caller (or for `user_id`, admins only). "
        "A `target_date` before today or a target already reached is a 400.",
        parameters=[subject_parameter("create the goal for")],
        request=HealthGoalCreateSerializer,
        responses={201: HealthGoalSerializer},
    )
    def post(self, request):
        subject_id, _ = subject_from_query(request, Access.WRITE, resource_type=RESOURCE)
        audit_set(request, action=AuditAction.CREATE, resource_type=RESOURCE, subject_id=subject_id)
        serializer = HealthGoalCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        goal = services.goal_create(user_id=subject_id, **serializer.validated_data)
        audit_set(
            request,
            action=AuditAction.CREATE,
            resource_type=RESOURCE,
            subject_id=subject_id,
            object_ids=[goal.pk],
        )
        return Response(_serialize(goal), status=status.HTTP_201_CREATED)


@extend_schema(parameters=[GOAL_ID])
class HealthGoalDetailView(APIView):
    def _get(self, request, goal_id, access: Access, action: str) -> HealthGoal:
        """The object, once the caller may ``access`` it; the request is audited as ``action``
        from here on, so a refused change (400) is on the trail too."""
        goal = selectors.goal_get(goal_id=parse_user_id(goal_id))
        if goal is None:
            raise NotFound()
        authorize_subject(request, goal.user_id, access, resource_type=RESOURCE, object_ids=[goal.pk])
        audit_set(
            request, action=action, resource_type=RESOURCE, subject_id=goal.user_id, object_ids=[goal.pk]
        )
        return goal

    def _update(self, request, goal_id, *, partial: bool) -> Response:
        goal = self._get(request, goal_id, Access.WRITE, AuditAction.UPDATE)
        serializer = HealthGoalUpdateSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        goal = services.goal_update(goal=goal, changes=serializer.validated_data)
        return Response(_serialize(goal))

    @extend_schema(tags=TAGS, summary="One goal", responses={200: HealthGoalSerializer})
    def get(self, request, goal_id: int):
        goal = self._get(request, goal_id, Access.READ, AuditAction.READ)
        return Response(_serialize(goal))

    @extend_schema(
        tags=TAGS,
        summary="Replace a goal's editable fields",
        description="`target_value` is required; editable fields left out keep their value. "
        "Fields that cannot change may be sent back unchanged.",
        request=HealthGoalUpdateSerializer,
        responses={200: HealthGoalSerializer},
    )
    def put(self, request, goal_id: int):
        return self._update(request, goal_id, partial=False)

    @extend_schema(
        tags=TAGS,
        summary="Change a goal",
        description="Change description, title, status, priority, target (target_value, "
        "target_date) or, for goals that follow no data, current_value.",
        request=HealthGoalUpdateSerializer,
        responses={200: HealthGoalSerializer},
    )
    def patch(self, request, goal_id: int):
        return self._update(request, goal_id, partial=True)

    @extend_schema(
        tags=TAGS, summary="Delete a goal", responses={204: OpenApiResponse(description="Deleted.")}
    )
    def delete(self, request, goal_id: int):
        goal = self._get(request, goal_id, Access.WRITE, AuditAction.DELETE)
        services.goal_delete(goal=goal)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(parameters=[USER_ID])
class HealthGoalUserListView(GenericAPIView):
    pagination_class = LimitSkipPagination
    serializer_class = HealthGoalSerializer

    @extend_schema(
        tags=TAGS,
        summary="A user's goals",
        description="Newest first.",
        parameters=[HealthGoalListQuerySerializer],
        operation_id="health_goals_user_list",
        responses={200: HealthGoalSerializer(many=True)},
    )
    def get(self, request, user_id: int):
        subject_id = authorize_subject(request, parse_user_id(user_id), Access.READ, resource_type=RESOURCE)
        audit_set(request, action=AuditAction.READ, resource_type=RESOURCE, subject_id=subject_id)
        query = HealthGoalListQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        page = self.paginate_queryset(
            selectors.goals_of(user_id=subject_id, status=query.validated_data.get("status_filter"))
        )
        audit_set(
            request,
            action=AuditAction.READ,
            resource_type=RESOURCE,
            subject_id=subject_id,
            object_ids=[goal.pk for goal in page],
        )
        return self.get_paginated_response([_serialize(goal) for goal in page])
