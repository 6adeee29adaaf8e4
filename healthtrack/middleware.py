"""Cross-cutting middleware: request ids, request log lines, API path normalisation, body
limits, JSON 500s."""

from __future__ import annotations

import logging
import re
import secrets
import tempfile
import time

import corsheaders.middleware
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_vary_headers

from healthtrack.context import RequestContext, bind_request_context, unbind_request_context
from healthtrack.errors import (
    DATABASE_RETRY_AFTER_SECONDS,
    database_unavailable,
    database_unavailable_response,
    is_api_path,
    json_error,
    mark_database_unavailable,
    server_error_response,
)
from healthtrack.logging import REQUEST_LOG_ENVIRON_KEY
from healthtrack.net import client_ip
from healthtrack.observability import METRICS_PATHS

logger = logging.getLogger("healthtrack.request")

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_META = "HTTP_X_REQUEST_ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

# Paths whose canonical form has no trailing slash; the admin keeps Django's slashes.
_SLASHLESS_PREFIXES = ("/api/", "/health/", "/docs/", "/redoc/", "/metrics/")


class RequestIdMiddleware:
    """Accept a well-formed ``X-Request-ID`` or make one; echo it and bind it to logs."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.META.get(_REQUEST_ID_META, "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else secrets.token_hex(16)
        request.request_id = request_id
        context = RequestContext(request_id=request_id, path=request.path, method=request.method)
        request.log_context = context
        token = bind_request_context(context)
        try:
            response = self.get_response(request)
        finally:
            unbind_request_context(token)
        response[REQUEST_ID_HEADER] = request_id
        return response


# Probes and scrapes arrive every few seconds; their successful answers are logged at
# DEBUG so they do not drown the rest (LOG_LEVEL=DEBUG shows them).
_QUIET_PATHS = frozenset({"/health", "/health/", *METRICS_PATHS})


def _request_user_id(request: HttpRequest) -> int | None:
    """The authenticated user, without causing a session lookup of its own."""
    context = getattr(request, "log_context", None)
    if context is not None and context.user_id is not None:
        return context.user_id  # set by JWT authentication
    user = getattr(request, "_cached_user", None)  # a session user the request already loaded
    if user is not None and user.is_authenticated:
        return user.pk
    return None


class RequestLogMiddleware:
    """One log line per request (logger ``healthtrack.request``): method, path, status,
    duration_ms, user id, client ip, request id.

    Never the query string, headers or bodies: they can hold tokens, passwords and
    health data. Server errors are logged at ERROR, the rest at INFO.

    Under gunicorn with its access log on (``REQUEST_LOG_BY_SERVER``, set by
    gunicorn.conf.py) gunicorn's access line is the request's one line: this leaves the
    user id, client address and level for it instead of writing a second line.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.line_by_server = settings.REQUEST_LOG_BY_SERVER

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        duration_ms = round((time.perf_counter() - started) * 1000, 2)
        status = response.status_code
        if status >= 500:
            level = logging.ERROR
        elif status < 400 and request.path in _QUIET_PATHS:
            level = logging.DEBUG
        else:
            level = logging.INFO
        if self.line_by_server:
            # gunicorn's access line, written once the response is sent, is the one line.
            request.environ[REQUEST_LOG_ENVIRON_KEY] = {
                "level": level,
                "user_id": _request_user_id(request),
                "ip": client_ip(request),
            }
        elif logger.isEnabledFor(level):
            logger.log(
                level,
                "%s %s %s %.1fms",
                request.method,
                request.path,
                status,
                duration_ms,
                extra={
                    "path": request.path,
                    "status": status,
                    "duration_ms": duration_ms,
                    "user_id": _request_user_id(request),
                    "ip": client_ip(request),
                },
            )
        return response


def _max_body_bytes(view_func, method: str) -> int:
    """The body limit declared by the view (or its DRF action), else the default."""
    view_class = getattr(view_func, "cls", None) or getattr(view_func, "view_class", None)
    actions = getattr(view_func, "actions", None) or {}
    handler = getattr(view_class, actions.get(method.lower(), ""), None) if view_class else None
    for owner in (handler, view_class, view_func):
        limit = getattr(owner, "max_body_bytes", None)
        if limit is not None:
            return limit
    return settings.MAX_REQUEST_BODY_BYTES


def _is_chunked(request: HttpRequest) -> bool:
    """A body sent without Content-Length (Transfer-Encoding: chunked) that the server
    has de-chunked and terminated (gunicorn sets ``wsgi.input_terminated``)."""
    return "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower() and bool(
        request.META.get("wsgi.input_terminated")
    )


def _buffer_chunked_body(request: HttpRequest, limit: int) -> bool:
    """Read a chunked body, up to ``limit`` bytes; False as soon as it is longer.

    Django only reads ``Content-Length`` bytes and would see a chunked body as empty;
    buffering it here (never more than ``limit`` + one block) gives views the body and
    enforces the same limit as for bodies that declare their length. A body over
    FILE_UPLOAD_MAX_MEMORY_SIZE spills to a temporary file, so an upload route with a
    large limit does not hold the whole upload in memory.
    """
    stream = request.META["wsgi.input"]
    # Not a context manager: the view reads it after this returns. It is freed, and its
    # temporary file deleted, with the request object.
    spool = tempfile.SpooledTemporaryFile(max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE)  # noqa: SIM115
    size = 0
    while block := stream.read(min(65_536, limit + 1 - size)):
        spool.write(block)
        size += len(block)
        if size > limit:
            spool.close()
            return False
    spool.seek(0)
    # Django's WSGIRequest reads the body from ``_stream``, bounded by CONTENT_LENGTH.
    request._stream = spool
    request.META["CONTENT_LENGTH"] = str(size)
    return True


class ApiPathMiddleware:
    """Accept API paths with or without a trailing slash, cap body sizes, answer in JSON.

    Canonical API paths have no trailing slash; ``/api/v1/users/`` is served as
    ``/api/v1/users`` without a redirect, so POST bodies survive. A body over the
    view's limit is refused with 413 before it is read. Unhandled exceptions under API
    paths become a JSON 500 (the traceback goes to the log), even with DEBUG on.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path_info = request.path_info
        if len(path_info) > 1 and path_info.endswith("/") and path_info.startswith(_SLASHLESS_PREFIXES):
            request.path_info = path_info.rstrip("/")
            request.path = request.META.get("SCRIPT_NAME", "").rstrip("/") + request.path_info
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return json_error(400, "Invalid Content-Length header.", "bad_request")
        if length:
            limit = _max_body_bytes(view_func, request.method)
            if length > limit:
                return json_error(
                    413,
                    f"Request body of {length} bytes is over this endpoint's limit of {limit} bytes.",
                    "payload_too_large",
                )
        elif _is_chunked(request):
            limit = _max_body_bytes(view_func, request.method)
            if not _buffer_chunked_body(request, limit):
                return json_error(
                    413,
                    f"Request body is over this endpoint's limit of {limit} bytes.",
                    "payload_too_large",
                )
        return None

    def process_exception(self, request: HttpRequest, exception: Exception):
        if database_unavailable(exception):
            # Not a bug: the database is down or restarting. Answer at once, say so, and
            # let the client retry; the pool reconnects on its own.
            logger.warning("Database unavailable (%s); answering 503.", exception.__class__.__name__)
            mark_database_unavailable(request)
            if is_api_path(request.path):
                return database_unavailable_response()
            return HttpResponse(
                "Service temporarily unavailable; try again shortly.",
                status=503,
                content_type="text/plain; charset=utf-8",
                headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
            )
        if not is_api_path(request.path):
            return None
        logger.exception("Unhandled exception on %s %s", request.method, request.path, exc_info=exception)
        return server_error_response()


class CorsMiddleware(corsheaders.middleware.CorsMiddleware):
    """django-cors-headers, without its work for requests that send no ``Origin``.

    Mobile apps and servers never send one, and for them the answer only needs
    ``Vary: Origin`` (a cache must not hand their response to a browser). The library
    builds every request's ``request.headers`` mapping to look for the header; reading
    it from ``META`` skips that on the API's most common requests. Requests with an
    ``Origin`` (browsers, preflights) take the library's own path unchanged.
    """

    def add_response_headers(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if "HTTP_ORIGIN" in request.META:
            return super().add_response_headers(request, response)
        enabled = getattr(request, "_cors_enabled", None)
        if enabled is None:
            enabled = self.is_enabled(request)
        if enabled:
            patch_vary_headers(response, ("origin",))
        return response
