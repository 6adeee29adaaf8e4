"""Helpers of the tests of requests answered before DRF (``healthtrack.cached_reads``):
both paths must give the same answer and the same audit row."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

from django.core.cache import caches

from healthtrack.cache import ResilientRedisCache
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


@contextmanager
def cache_round_trips() -> Iterator[dict]:
    """Counts ``script`` (the rate-limit script on Redis) and ``get_many`` calls while
    inside; ``one`` is what a single cache round trip looks like on this cache (the
    script on Redis, else one ``get_many``)."""
    backend = type(caches["default"])
    counts = {"one": (1, 0) if issubclass(backend, ResilientRedisCache) else (0, 1)}
    with (
        mock.patch.object(backend, "get_many", autospec=True, side_effect=backend.get_many) as get_many,
        mock.patch.object(
            ResilientRedisCache, "run_script", autospec=True, side_effect=ResilientRedisCache.run_script
        ) as script,
    ):
        counts["made"] = lambda: (script.call_count, get_many.call_count)
        yield counts
