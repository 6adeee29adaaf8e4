"""Helpers of the tests of requests answered before DRF (``healthtrack.cached_reads``):
both paths must give the same answer and the same audit row."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

from healthtrack.models import AuditEvent

AUDIT_FIELDS = ("actor_id", "subject_id", "action", "resource_type", "object_ids", "method", "path", "status")


def comparable(response) -> tuple:
    """Status, headers (but the request id) and body."""
    headers = {name: value for name, value in response.headers.items() if name != "X-Request-ID"}
    return response.status_code, headers, response.content


def last_audit_row() -> dict:
    return AuditEvent.objects.order_by("-id").values(*AUDIT_FIELDS).first()


@contextmanager
def calls_reaching(view: type, handler: str) -> Iterator[list[str]]:
    """The full paths of the requests that reached ``view.<handler>`` while inside."""
    calls: list[str] = []
    original = getattr(view, handler)

    def counted(self, request, *args, **kwargs):
        calls.append(request.get_full_path())
        return original(self, request, *args, **kwargs)

    with mock.patch.object(view, handler, counted):
        yield calls
