"""Health metrics API: thin views over metrics.services and metrics.selectors."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import orjson
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from healthtrack.audit import audit_set
from healthtrack.cached_reads import CachedRead, DirectAnswer, DirectRoute, plain_int
from healthtrack.errors import PayloadTooLarge
from healthtrack.models import AuditAction
from healthtrack.pagination import LimitSkipPagination
from healthtrack.permissions import Access, authorize_subject, is_admin, parse_user_id
from healthtrack.renderers import dumps
from metrics import selectors, services
from metrics.registry import METRIC_TYPES
from metrics.serializers import (
    HealthMetricSerializer,
    HealthMetricWriteSerializer,
    MetricBulkResultSerializer,
    MetricBulkSerializer,
    MetricSummarySerializer,
    metric_as_dict,
)
from metrics.validation import BULK_MAX_SAMPLES, TYPE_CHOICES_TEXT, echo, parse_timestamp, sample_clean
from users.models import available_timezones
from users.selectors import user_is_active, user_timezone_name

RESOURCE = "metric"
TAGS = ["health-metrics"]
SUMMARY_MAX_DAYS = 365
SUMMARY_DEFAULT_DAYS = 30
BULK_MAX_BODY_BYTES = 4 * 1024 * 1024

# --- Query parameters ------------------------------------------------------------------

USER_ID_WRITE_PARAM = OpenApiParameter(
    "user_id",
    OpenApiTypes.INT,
    description="Owner of the new data; default the caller. People may only write their own data "
    "(another id is 404); superusers may write anyone's; clinicians never write patients' data.",
)
USER_ID_READ_PARAM = OpenApiParameter(
    "user_id",
    OpenApiTypes.INT,
    description="Whose data; default the caller. Others need to be on the person's care team "
    "(clinicians) or superusers; otherwise 404.",
)
METRIC_TYPE_PARAM = OpenApiParameter(
    "metric_type", OpenApiTypes.STR, enum=list(METRIC_TYPES), description="Only this metric type."
)
_TIMESTAMP_HELP = (
    "ISO 8601 date-time, e.g. 2026-03-10T07:30:00+01:00 (encode + as %2B) or 2026-03-10T06:30:00Z; "
    "a value without an offset (or a plain date) is taken as UTC."
)
LIST_PARAMS = [
    METRIC_TYPE_PARAM,
    OpenApiParameter("since", OpenApiTypes.DATETIME, description=f"recorded_at >= since. {_TIMESTAMP_HELP}"),
    OpenApiParameter(
        "until",
        OpenApiTypes.DATETIME,
        description=f"recorded_at <= until (not before since). {_TIMESTAMP_HELP}",
    ),
]
SUMMARY_PARAMS = [
    OpenApiParameter(
        "days",
        {"type": "integer", "minimum": 1, "maximum": SUMMARY_MAX_DAYS},
        description=f"Local days to cover, today included (1-{SUMMARY_MAX_DAYS}, default 30).",
    ),
    METRIC_TYPE_PARAM,
    USER_ID_READ_PARAM,
]


def _query_metric_type(request) -> str | None:
    raw = request.query_params.get("metric_type")
    if raw is None:
        return None
    if raw not in METRIC_TYPES:
        raise ValidationError(
            {"metric_type": [f"{echo(raw)} is not a metric type; choose one of: {TYPE_CHOICES_TEXT}."]}
        )
    return raw


def _query_datetime(request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    # An unencoded '+' of an offset arrives as a space: "...T08:00:00 01:00".
    if len(raw) > 6 and raw[-6] == " " and raw[-3] == ":":
        raw = raw[:-6] + "+" + raw[-5:]
    try:
        return parse_timestamp(raw, naive_as_utc=True)
    except ValueError as error:
        raise ValidationError({name: [str(error)]}) from None


def _query_days(request) -> int:
    raw = request.query_params.get("days")
    if raw is None:
        return SUMMARY_DEFAULT_DAYS
    try:
        days = int(raw)
    except ValueError:
        days = 0
    if not 1 <= days <= SUMMARY_MAX_DAYS:
        raise ValidationError({"days": [f"Must be a whole number between 1 and {SUMMARY_MAX_DAYS}."]})
    return days


def _write_subject(request) -> int:
    """The owner of data being written: the caller, or ``user_id`` when allowed."""
    raw = request.query_params.get("user_id")
    if raw is None:
        return request.user.pk
    user_id = parse_user_id(raw)
    authorize_subject(request, user_id, Access.WRITE, resource_type=RESOURCE)
    # Only superusers get here for someone else; their id may name no one.
    if user_id != request.user.pk and not user_is_active(user_id=user_id):
        raise NotFound()
    return user_id


def _read_subject(request, raw) -> tuple[int, str]:
    """``(user_id, time zone)`` of the person whose data is read; 404 when not allowed."""
    if raw is None:  # absent; an empty or malformed id is a 404 like any unknown one
        user_id = request.user.pk
    else:
        user_id = parse_user_id(raw)
        authorize_subject(request, user_id, Access.READ, resource_type=RESOURCE)
    tz = getattr(request.user, "timezone_name", None) if user_id == request.user.pk else None
    if tz is None:
        tz = user_timezone_name(user_id=user_id, active_only=True)
        if tz is None:
            raise NotFound()
    if tz not in available_timezones():  # profiles validate it; never 500 on a bad row
        tz = "UTC"
    return user_id, tz


# --- Views -------------------------------------------------------------------------------


def _create_outcome(created: bool) -> tuple[int, str]:
    """The status and audit action of a POST: 201 and create, or 200 and read for a
    sample already stored under the same sync id."""
    if created:
        return status.HTTP_201_CREATED, AuditAction.CREATE
    return status.HTTP_200_OK, AuditAction.READ


class MetricCreateView(APIView):
    @extend_schema(
        tags=TAGS,
        operation_id="health_metrics_create",
        summary="Record a metric sample",
        description=(
            "Validates the sample against the metric type registry (type, unit, physiological "
            "range, blood pressure rules, recorded_at at most 5 minutes ahead), converts it to "
            "the canonical unit and stores it (201). A sample whose (source, external_id) the "
            "user already has is not stored again: the stored one is returned with 200."
        ),
        parameters=[USER_ID_WRITE_PARAM],
        request=HealthMetricWriteSerializer,
        responses={
            201: OpenApiResponse(HealthMetricSerializer, description="Stored."),
            200: OpenApiResponse(
                HealthMetricSerializer, description="Already stored (same source and external_id)."
            ),
        },
    )
    def post(self, request):
        user_id = _write_subject(request)
        serializer = HealthMetricWriteSerializer(data=request.data, context={"user_id": user_id})
        serializer.is_valid(raise_exception=True)
        metric, created = services.metric_create(user_id=user_id, fields=serializer.validated_data)
        answer_status, action = _create_outcome(created)
        audit_set(request, action=action, resource_type=RESOURCE, subject_id=user_id, object_ids=[metric.pk])
        return Response(metric_as_dict(metric), status=answer_status)


class MetricDetailView(APIView):
    def _metric(self, request, metric_id, access: Access):
        metric = selectors.metric_get(metric_id=parse_user_id(metric_id))
        if metric is None:
            raise NotFound()
        authorize_subject(request, metric.user_id, access, resource_type=RESOURCE, object_ids=[metric.pk])
        return metric

    @extend_schema(tags=TAGS, summary="One metric sample", responses={200: HealthMetricSerializer})
    def get(self, request, metric_id: int):
        metric = self._metric(request, metric_id, Access.READ)
        audit_set(
            request,
            action=AuditAction.READ,
            resource_type=RESOURCE,
            subject_id=metric.user_id,
            object_ids=[metric.pk],
        )
        return Response(metric_as_dict(metric))

    def _update(self, request, metric_id, *, partial: bool) -> Response:
        metric = self._metric(request, metric_id, Access.WRITE)
        metric = services.metric_update(metric_id=metric.pk, data=request.data, partial=partial)
        audit_set(
            request,
            action=AuditAction.UPDATE,
            resource_type=RESOURCE,
            subject_id=metric.user_id,
            object_ids=[metric.pk],
        )
        return Response(metric_as_dict(metric))

    @extend_schema(
        tags=TAGS,
        summary="Replace a metric sample",
        description="metric_type and value are required; other fields left out keep their stored "
        "values. The whole sample is validated again. source and external_id cannot change (400).",
        request=HealthMetricWriteSerializer,
        responses={200: HealthMetricSerializer},
    )
    def put(self, request, metric_id: int):
        return self._update(request, metric_id, partial=False)

    @extend_schema(
        tags=TAGS,
        summary="Change a metric sample",
        description="Fields sent replace the stored ones and the whole sample is validated again "
        "(a new metric_type re-checks the stored value's unit and range). `unit` describes the "
        "values sent with it. source and external_id cannot change (400).",
        request=HealthMetricWriteSerializer,
        responses={200: HealthMetricSerializer},
    )
    def patch(self, request, metric_id: int):
        return self._update(request, metric_id, partial=True)

    @extend_schema(
        tags=TAGS, summary="Delete a metric sample", responses={204: OpenApiResponse(description="Deleted.")}
    )
    def delete(self, request, metric_id: int):
        metric = self._metric(request, metric_id, Access.WRITE)
        services.metric_delete(metric=metric)
        audit_set(
            request,
            action=AuditAction.DELETE,
            resource_type=RESOURCE,
            subject_id=metric.user_id,
            object_ids=[metric.pk],
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class MetricUserListView(GenericAPIView):
    pagination_class = LimitSkipPagination
    serializer_class = HealthMetricSerializer

    @extend_schema(
        tags=TAGS,
        operation_id="health_metrics_user_list",
        summary="A user's metric samples, newest first",
        parameters=LIST_PARAMS,
        responses={200: HealthMetricSerializer(many=True)},
    )
    def get(self, request, user_id: int):
        user_id = parse_user_id(user_id)
        authorize_subject(request, user_id, Access.READ, resource_type=RESOURCE)
        metric_type = _query_metric_type(request)
        since, until = _query_datetime(request, "since"), _query_datetime(request, "until")
        if since is not None and until is not None and since > until:
            raise ValidationError({"since": ["Must not be after until."]})
        # A superuser's user_id may name no one (clinicians were checked by the care team).
        if user_id != request.user.pk and is_admin(request.user) and not user_is_active(user_id=user_id):
            raise NotFound()
        rows = selectors.MetricRows(user_id=user_id, metric_type=metric_type, since=since, until=until)
        page = self.paginate_queryset(rows)
        audit_set(
            request,
            action=AuditAction.READ,
            resource_type=RESOURCE,
            subject_id=user_id,
            object_ids=[row["id"] for row in page],
        )
        return self.get_paginated_response(page)


class MetricBulkView(APIView):
    # 1,000 samples with long notes; the sample count is limited separately.
    max_body_bytes = BULK_MAX_BODY_BYTES

    @extend_schema(
        tags=TAGS,
        operation_id="health_metrics_bulk_create",
        summary="Record up to 1,000 samples at once",
        description=(
            f"Each sample is validated as in POST /api/v1/health-metrics. All valid samples are stored "
            f"in one transaction; invalid ones are listed in `errors` (index, field, message) and "
            f"skipped, so nothing valid is lost. Samples whose (source, external_id) is already stored, "
            f"or repeated within the batch, are skipped and counted in `duplicates`. 201 when at least "
            f"one sample was stored, else 200. More than {BULK_MAX_SAMPLES} samples, or a body over "
            f"{BULK_MAX_BODY_BYTES} bytes, is 413."
        ),
        parameters=[USER_ID_WRITE_PARAM],
        request=MetricBulkSerializer,
        responses={
            201: OpenApiResponse(MetricBulkResultSerializer, description="At least one sample stored."),
            200: OpenApiResponse(MetricBulkResultSerializer, description="Nothing new stored."),
        },
    )
    def post(self, request):
        user_id = _write_subject(request)
        body = request.data
        if not isinstance(body, dict) or not isinstance(body.get("samples"), list):
            raise ValidationError({"samples": ['Send {"samples": [...]} with a list of samples.']})
        unknown = sorted(set(body) - {"samples"})
        if unknown:
            raise ValidationError({name: ["Unknown field; it cannot be set."] for name in unknown})
        samples = body["samples"]
        if len(samples) > BULK_MAX_SAMPLES:
            raise PayloadTooLarge(
                f"At most {BULK_MAX_SAMPLES} samples per request; got {len(samples)}. Split the batch."
            )
        result = services.metric_bulk_ingest(user_id=user_id, samples=samples)
        audit_set(
            request,
            action=AuditAction.CREATE,
            resource_type=RESOURCE,
            subject_id=user_id,
            object_ids=result.created_ids,
        )
        return Response(
            {"created": len(result.created_ids), "duplicates": result.duplicates, "errors": result.errors},
            status=status.HTTP_201_CREATED if result.created_ids else status.HTTP_200_OK,
        )


class MetricSummaryView(APIView):
    @extend_schema(
        tags=TAGS,
        operation_id="health_metrics_summary",
        summary="Per-type statistics and daily series",
        description=(
            "For the last `days` local days (today included, in the user's time zone): per metric "
            "type the sample count, avg/min/max, the latest sample and one point per local day with "
            "data. Sum types (steps, exercise, sleep) are summed per day and their top-level "
            "avg/min/max are over daily totals; the others are over samples. Weight's daily value is "
            "the day's latest. Cached until the user's next write, at most REDIS_CACHE_EXPIRE_METRICS "
            "seconds (default 300)."
        ),
        parameters=SUMMARY_PARAMS,
        responses={200: MetricSummarySerializer},
    )
    def get(self, request):
        user_id, tz = _read_subject(request, request.query_params.get("user_id"))
        days = _query_days(request)
        metric_type = _query_metric_type(request)
        today = timezone.now().astimezone(ZoneInfo(tz)).date()
        body, _ = selectors.metric_summary_body(
            user_id=user_id, tz=tz, days=days, today=today, metric_type=metric_type
        )
        audit_set(request, action=AuditAction.READ, resource_type=RESOURCE, subject_id=user_id)
        # The cached body is served as stored: no renderer on a cache hit.
        return HttpResponse(body, content_type="application/json")


def _summary_entry(query) -> tuple[str, tuple] | None:
    days = plain_int(query.get("days"), default=SUMMARY_DEFAULT_DAYS, low=1, high=SUMMARY_MAX_DAYS)
    metric_type = query.get("metric_type")
    if days is None or (metric_type is not None and metric_type not in METRIC_TYPES):
        return None
    return selectors.SUMMARY_CACHE_NAME, selectors.metric_summary_cache_parts(
        days=days, metric_type=metric_type
    )


def _summary_body(entry, snapshot) -> bytes | None:
    tz = snapshot["timezone"]
    if tz not in available_timezones():
        return None
    today = timezone.now().astimezone(ZoneInfo(tz)).date()
    return selectors.metric_summary_cached_body(entry, tz=tz, today=today)


# Cache hits of MetricSummaryView answered by healthtrack.cached_reads.
summary_cached_read = CachedRead(
    path=re.compile(r"/api/v1/health-metrics/summary"),
    view=MetricSummaryView,
    view_name="metric-summary",
    resource_type=RESOURCE,
    entry=_summary_entry,
    body=_summary_body,
    query_names=frozenset({"days", "metric_type", "user_id"}),
    subject_param="user_id",
)


def _list_direct_answer(request, user_id: int, query) -> DirectAnswer | None:
    """MetricUserListView's answer for the caller's own samples with plain ``limit``,
    ``skip`` and ``metric_type`` (None for anything else: the view answers it)."""
    paginator = LimitSkipPagination()
    limit = plain_int(query.get("limit"), default=paginator.default_limit, low=1, high=paginator.max_limit)
    skip = plain_int(query.get("skip"), default=0, low=0, high=paginator.max_offset)
    metric_type = query.get("metric_type")
    if limit is None or skip is None or (metric_type is not None and metric_type not in METRIC_TYPES):
        return None
    rows = selectors.MetricRows(user_id=user_id, metric_type=metric_type)
    paginator.count, page = rows.count_and_page(offset=skip, limit=limit)
    paginator.request, paginator.limit, paginator.offset = request, limit, skip
    # Plain values (digits, a metric type's name) need no escaping in the links.
    body = paginator.page_body(page, plain_query=query)
    return DirectAnswer(dumps(body), object_ids=[row["id"] for row in page])


def _create_direct_answer(request, user_id: int, query) -> DirectAnswer | None:
    """MetricCreateView's answer for a valid sample of the caller's own (None for a body
    that is not a valid sample: the view answers it, with the 400 naming the field)."""
    try:
        data = orjson.loads(request.body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    fields, errors = sample_clean(data, user_id=user_id, now=timezone.now())
    if errors:
        return None
    metric, created = services.metric_create(user_id=user_id, fields=fields)
    answer_status, action = _create_outcome(created)
    return DirectAnswer(
        dumps(metric_as_dict(metric)), object_ids=[metric.pk], status=answer_status, action=action
    )


# Plain requests on one's own samples answered by healthtrack.cached_reads.
metric_list_direct = DirectRoute(
    path=re.compile(r"/api/v1/health-metrics/user/(?P<user_id>[0-9]+)"),
    view=MetricUserListView,
    view_name="metric-user-list",
    resource_type=RESOURCE,
    answer=_list_direct_answer,
    query_names=frozenset({"limit", "skip", "metric_type"}),
)
metric_create_direct = DirectRoute(
    path=re.compile(r"/api/v1/health-metrics"),
    view=MetricCreateView,
    view_name="metric-create",
    resource_type=RESOURCE,
    answer=_create_direct_answer,
    query_names=frozenset(),
    method="POST",
)
