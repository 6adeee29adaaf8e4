"""Per-request context shared by logging, audit and error handling.

A ``ContextVar`` rather than thread-locals so it is correct under gunicorn threads and
is reset for every request by ``RequestIdMiddleware``.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class RequestContext:
    request_id: str = "-"
    user_id: int | None = None
    path: str = ""
    method: str = ""


_current: ContextVar[RequestContext | None] = ContextVar("healthtrack_request", default=None)


def current_request_context() -> RequestContext | None:
    return _current.get()


def bind_request_context(context: RequestContext):
    """Make ``context`` current; returns the token to pass to ``unbind_request_context``."""
    return _current.set(context)


def unbind_request_context(token) -> None:
    _current.reset(token)
