"""The audit trail: one row per request that reads or changes someone's data.

Views (and the admin) say what the request did with ``audit_set``; the row is written
once, by ``AuditMiddleware``, when the response status is known. A later call in the
same request replaces an earlier one, so a request never writes two rows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.http import HttpRequest, HttpResponse

from healthtrack.models import AuditAction, AuditEvent
from healthtrack.net import client_ip

logger = logging.getLogger("healthtrack.audit")

MAX_OBJECT_IDS = 1000


@dataclass
class AuditEntry:
    action: str
    resource_type: str
    subject_id: int | None = None
    object_ids: list[str] = field(default_factory=list)
    actor_id: int | None = None


def _http_request(request) -> HttpRequest:
    # DRF wraps Django's request; attributes must live on the underlying one so the
    # middleware sees them.
    return getattr(request, "_request", request)


def audit_set(
    request,
    *,
    action: str,
    resource_type: str,
    subject_id: int | None = None,
    object_ids: Iterable[object] = (),
    actor_id: int | None = None,
) -> None:
    """Say what this request did; written when the response is ready."""
    ids = [str(object_id) for object_id in object_ids]
    _http_request(request).audit_entry = AuditEntry(
        action=str(action),
        resource_type=resource_type,
        subject_id=subject_id,
        object_ids=ids[:MAX_OBJECT_IDS],
        actor_id=actor_id,
    )


def audit_deny(request, *, resource_type: str, subject_id: int | None, object_ids=()) -> None:
    audit_set(
        request,
        action=AuditAction.DENIED,
        resource_type=resource_type,
        subject_id=subject_id,
        object_ids=object_ids,
    )


def _storable(text: str) -> str:
    """Client text (a path, an id from one) as PostgreSQL can store it: NUL becomes U+FFFD.
    Losing the row of a request probing with %00 would hide exactly that probe."""
    return text.replace("\x00", "\ufffd")


def audit_event_record(*, request: HttpRequest, entry: AuditEntry, status: int | None) -> AuditEvent:
    """Write one audit row for ``request``."""
    user = getattr(request, "user", None)
    actor_id = entry.actor_id
    if actor_id is None and user is not None and user.is_authenticated:
        actor_id = user.pk
    return AuditEvent.objects.create(
        actor_id=actor_id,
        subject_id=entry.subject_id,
        action=entry.action,
        resource_type=entry.resource_type,
        object_ids=[_storable(object_id) for object_id in entry.object_ids],
        method=request.method or "",
        path=_storable(request.path[:255]),
        status=status,
        ip=client_ip(request),
        user_agent=_storable(request.headers.get("User-Agent", "")[:256]),
        request_id=getattr(request, "request_id", "")[:128],
    )


class AuditMiddleware:
    """Write the request's audit entry, if any, once the status is known."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        entry = getattr(request, "audit_entry", None)
        if entry is not None and getattr(request, "database_unavailable", False):
            # The request already failed on the database; trying again would hold the
            # answer for another pool timeout. Nothing was read or changed (503).
            logger.warning("Audit event not written, the database is unavailable: %s", entry)
        elif entry is not None:
            try:
                audit_event_record(request=request, entry=entry, status=response.status_code)
            except Exception:
                # Never fail the user's request on the trail, but make it loud.
                logger.exception("Could not write audit event %s", entry)
        return response
