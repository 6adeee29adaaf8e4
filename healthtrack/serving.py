"""gunicorn: the errors it answers itself, in the API's JSON error shape.

A request gunicorn cannot parse never reaches Django: a request line over
``limit_request_line`` (4094 bytes: a long query string) is a 414, a malformed header a
400, too many headers a 431. gunicorn writes those as small HTML pages; clients of this
API expect ``{"detail", "code"}`` JSON for every error (DESIGN.md), and the OpenAPI
schema documents them so. ``use_json_error_pages`` (called from ``gunicorn.conf.py`` in
each worker) swaps gunicorn's page writer for one that writes that JSON, with the same
security headers as every other response.
"""

from __future__ import annotations

import orjson

# gunicorn's status codes for requests it refuses, and our stable codes for them.
ERROR_CODES = {
    400: "bad_request",
    403: "forbidden",
    414: "uri_too_long",
    417: "expectation_failed",
    431: "request_header_fields_too_large",
    500: "server_error",
    501: "not_implemented",
}


def json_error_response(status_int: int, reason: str, message: str) -> bytes:
    """The whole HTTP/1.1 response for an error gunicorn answers itself."""
    detail = message.strip() or reason
    body = orjson.dumps({"detail": detail, "code": ERROR_CODES.get(status_int, "bad_request")})
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "Referrer-Policy: same-origin\r\n"
        "\r\n"
    )
    return head.encode("latin-1") + body


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """Drop-in for ``gunicorn.util.write_error``."""
    from gunicorn import util

    util.write_nonblock(sock, json_error_response(status_int, reason, mesg))


def use_json_error_pages() -> None:
    """Make gunicorn write its own error responses as JSON (``handle_error`` looks the
    writer up on ``gunicorn.util`` at each call)."""
    from gunicorn import util

    util.write_error = write_json_error
