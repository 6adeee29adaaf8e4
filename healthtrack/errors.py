"""JSON errors everywhere under ``/api/`` and ``/health``.

Every error body has ``detail`` (a sentence a developer can show) and ``code`` (stable,
machine-readable); validation errors add ``errors``: ``{field: [reasons]}``, with
nested fields as dotted paths (``samples.3.value``).
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.settings import api_settings

logger = logging.getLogger("healthtrack.errors")

API_PATH_PREFIXES = ("/api/", "/health", "/metrics")


def is_api_path(path: str) -> bool:
    return path.startswith(API_PATH_PREFIXES)


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "payload_too_large"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Conflict with the current state of the resource."
    default_code = "conflict"


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Service temporarily unavailable, try again shortly."
    default_code = "service_unavailable"


# How long clients are asked to wait after a 503 for an unreachable database.
DATABASE_RETRY_AFTER_SECONDS = 2
# SQLSTATE classes that mean "the database cannot serve us right now", not "this query
# is wrong": 08 connection exception, 53 insufficient resources (too many connections),
# 57 operator intervention (shutting down, starting up, statement timeout).
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "57")
_SQLITE_UNAVAILABLE = ("database is locked", "unable to open database file", "disk i/o error")


def database_unavailable(exc: BaseException) -> bool:
    """Is ``exc`` the database being unreachable (down, restarting, pool timed out)?

    Connection failures, closed connections and psycopg_pool's ``PoolTimeout`` carry no
    SQLSTATE; errors in a query (a bug) do, and stay 500s.
    """
    from django.db import InterfaceError, OperationalError

    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    cause = exc.__cause__ or exc
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a pinned dependency
        psycopg = None
    if psycopg is not None and isinstance(cause, psycopg.Error):
        if isinstance(cause, psycopg.InterfaceError):
            return True
        sqlstate = getattr(cause, "sqlstate", None)
        return isinstance(cause, psycopg.OperationalError) and (
            sqlstate is None or sqlstate.startswith(_UNAVAILABLE_SQLSTATE_CLASSES)
        )
    return str(cause).lower().startswith(_SQLITE_UNAVAILABLE)


def mark_database_unavailable(request) -> None:
    """Remember for the rest of the request (the audit write) that the database is gone."""
    getattr(request, "_request", request).database_unavailable = True


def database_unavailable_response() -> JsonResponse:
    return json_error(
        503,
        "The database is unavailable; try again shortly.",
        "service_unavailable",
        Retry_After=str(DATABASE_RETRY_AFTER_SECONDS),
    )


def flatten_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn DRF's nested error detail into ``{"a.b.0.c": ["reason", ...]}``."""
    flat: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            for sub_key, messages in flatten_errors(value, path).items():
                flat.setdefault(sub_key, []).extend(messages)
    elif isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            flat[prefix or api_settings.NON_FIELD_ERRORS_KEY] = [str(item) for item in detail]
        else:
            for index, item in enumerate(detail):
                if not item:
                    continue
                path = f"{prefix}.{index}" if prefix else str(index)
                for sub_key, messages in flatten_errors(item, path).items():
                    flat.setdefault(sub_key, []).extend(messages)
    else:
        flat[prefix or api_settings.NON_FIELD_ERRORS_KEY] = [str(detail)]
    return flat


def error_body(detail: str, code: str, errors: dict[str, list[str]] | None = None) -> dict:
    body: dict[str, Any] = {"detail": detail, "code": code}
    if errors is not None:
        body["errors"] = errors
    return body


def _validation_body(exc: exceptions.ValidationError) -> dict:
    errors = flatten_errors(exc.detail)
    first_field, first_messages = next(iter(errors.items()), ("non_field_errors", ["Invalid input."]))
    if first_field == api_settings.NON_FIELD_ERRORS_KEY:
        summary = first_messages[0]
    else:
        summary = f"{first_field}: {first_messages[0]}"
    return error_body(summary, "invalid", errors)


def _code_of(exc: exceptions.APIException) -> str:
    codes = exc.get_codes()
    if isinstance(codes, str):
        return codes
    return exc.default_code


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF exception handler: every known error becomes a JSON body with a status."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif database_unavailable(exc):
        logger.warning("Database unavailable (%s); answering 503.", exc.__class__.__name__)
        if context.get("request") is not None:
            mark_database_unavailable(context["request"])
        exc = ServiceUnavailable("The database is unavailable; try again shortly.")
        exc.wait = DATABASE_RETRY_AFTER_SECONDS

    if not isinstance(exc, exceptions.APIException):
        return None  # a real bug: JsonErrorMiddleware logs it and answers 500

    headers: dict[str, str] = {}
    if auth_header := getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = auth_header
    if getattr(exc, "wait", None) is not None:
        headers["Retry-After"] = str(max(1, int(exc.wait)))

    if isinstance(exc, exceptions.ValidationError):
        body = _validation_body(exc)
    elif isinstance(exc.detail, dict) and "detail" in exc.detail:
        # simplejwt's shape: {"detail": ..., "code": ..., "messages": [...]}
        body = error_body(str(exc.detail["detail"]), str(exc.detail.get("code", exc.default_code)))
    else:
        body = error_body(str(exc.detail), _code_of(exc))
    return Response(body, status=exc.status_code, headers=headers)


def json_error(status_code: int, detail: str, code: str, **headers: str) -> JsonResponse:
    response = JsonResponse(error_body(detail, code), status=status_code)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def server_error_response() -> JsonResponse:
    return json_error(500, "Internal server error. It has been logged.", "server_error")


# --- Django-level handlers (requests DRF never sees) ----------------------------


@csrf_exempt  # a bearer-token API: a PUT to a malformed id is a JSON 404, not a CSRF page
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Catch-all for unknown routes under API prefixes, also when DEBUG is on."""
    return json_error(404, "Not found.", "not_found")


def page_not_found(request: HttpRequest, exception: Exception | None = None):
    if is_api_path(request.path):
        return api_not_found(request)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest):
    if is_api_path(request.path):
        return server_error_response()
    return defaults.server_error(request)


def bad_request(request: HttpRequest, exception: Exception | None = None):
    if is_api_path(request.path):
        return json_error(400, "Bad request.", "bad_request")
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception | None = None):
    if is_api_path(request.path):
        return json_error(403, "You do not have permission to perform this action.", "permission_denied")
    return defaults.permission_denied(request, exception)
