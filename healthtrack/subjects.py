"""Whose data a request is about, when the route takes it as an optional ``user_id``."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import NotFound, ValidationError

from healthtrack.permissions import Access, authorize_subject, parse_user_id
from users.selectors import user_timezone_name


def subject_parameter(action: str) -> OpenApiParameter:
    """The OpenAPI description of the optional ``user_id`` query parameter."""
    return OpenApiParameter(
        "user_id",
        OpenApiTypes.INT,
        OpenApiParameter.QUERY,
        required=False,
        description=f"Whose data to {action}; defaults to the caller. Anyone else's id is a 404 "
        "unless the caller may see (care-team clinician, for reads) or change (admin) it.",
    )


def subject_from_query(request, access: Access, *, resource_type: str) -> tuple[int, str]:
    """``(user_id, timezone)`` of the subject named by the optional ``user_id`` query
    parameter (default: the caller). Refusals are audited 404s; an id the caller may
    use but that names no account (admins) is a plain 404."""
    values = request.query_params.getlist("user_id")
    if not values:
        subject_id = request.user.pk
    elif len(values) > 1:
        raise ValidationError({"user_id": ["Give one user id at most."]})
    else:
        subject_id = parse_user_id(values[0])  # malformed: 404, like ids in paths
    if subject_id == request.user.pk:
        return subject_id, getattr(request.user, "timezone_name", None) or _timezone_of(subject_id)
    authorize_subject(request, subject_id, access, resource_type=resource_type)
    return subject_id, _timezone_of(subject_id)


def _timezone_of(user_id: int) -> str:
    tz = user_timezone_name(user_id=user_id)
    if tz is None:
        raise NotFound()
    return tz
