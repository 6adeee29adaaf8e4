"""JSON log lines: one per request, with context, and nothing secret in them."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from conftest import client_for
from healthtrack.logging import REQUEST_LOG_ENVIRON_KEY, JsonFormatter, RequestContextFilter
from users.tests.factories import DEFAULT_PASSWORD, AdminFactory

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def log_lines():
    """Every log record of the test as a parsed JSON line, formatted as in production."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())
    root = logging.getLogger()
    request_logger = logging.getLogger("healthtrack.request")
    previous_level = request_logger.level
    request_logger.setLevel(logging.DEBUG)
    root.addHandler(handler)

    def lines(logger: str | None = None) -> list[dict]:
        parsed = [orjson.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
        return [line for line in parsed if logger is None or line["logger"] == logger]

    lines.raw = stream.getvalue  # type: ignore[attr-defined]
    # The one line per request (the same logger also carries unhandled exceptions).
    lines.requests = lambda: [line for line in lines("healthtrack.request") if "duration_ms" in line]  # type: ignore[attr-defined]
    yield lines
    root.removeHandler(handler)
    request_logger.setLevel(previous_level)


def test_request_line_carries_context_and_no_secrets(auth_client, user, log_lines):
    access = auth_client.tokens["access"]
    response = auth_client.get(
        "/api/v1/users/me?access_token=query-secret-123&password=hunter2-secret",
        HTTP_X_REQUEST_ID="req-42",
    )
    assert response.status_code == 200
    (line,) = log_lines.requests()
    assert line["level"] == "INFO"
    assert line["message"].startswith("GET /api/v1/users/me 200 ")
    assert line["request_id"] == "req-42" == response["X-Request-ID"]
    assert line["user_id"] == user.pk
    assert line["path"] == "/api/v1/users/me"  # never the query string
    assert line["method"] == "GET"
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["ip"] == "127.0.0.1"
    assert line["time"].endswith("+00:00")
    raw = log_lines.raw()
    for secret in (access, "query-secret-123", "hunter2-secret", user.email):
        assert secret not in raw


def test_sign_in_logs_neither_password_nor_tokens(api_client, user, log_lines):
    response = api_client.post(
        "/api/v1/auth/token", {"username": user.username, "password": DEFAULT_PASSWORD}, format="json"
    )
    assert response.status_code == 200
    raw = log_lines.raw()
    assert DEFAULT_PASSWORD not in raw
    assert response.json()["access"] not in raw and response.json()["refresh"] not in raw
    (line,) = log_lines.requests()
    assert line["status"] == 200 and line["path"] == "/api/v1/auth/token"


def test_anonymous_request_has_no_user(api_client, log_lines):
    assert api_client.get("/api/v1/users/me").status_code == 401
    (line,) = log_lines.requests()
    assert line["user_id"] is None
    assert line["status"] == 401 and line["level"] == "INFO"


def test_session_user_of_the_admin_is_logged(client, db, log_lines):
    admin = AdminFactory()
    client.force_login(admin)
    assert client.get("/admin/").status_code == 200
    (line,) = log_lines.requests()
    assert line["user_id"] == admin.pk


@pytest.mark.urls("healthtrack.tests.boom_urls")
def test_server_error_line_is_an_error(api_client, log_lines):
    assert api_client.get("/api/v1/boom").status_code == 500
    (line,) = log_lines.requests()
    assert line["level"] == "ERROR" and line["status"] == 500
    # The traceback is logged once, by the JSON 500 handler, in the same JSON shape.
    (error,) = [entry for entry in log_lines() if "exception" in entry]
    assert error["request_id"] == line["request_id"]
    assert "RuntimeError" in error["exception"]


def test_probes_and_scrapes_are_logged_at_debug(api_client, db, log_lines):
    api_client.get("/health")
    api_client.get("/metrics")
    lines = log_lines.requests()
    assert [line["level"] for line in lines] == ["DEBUG", "DEBUG"]


def test_extra_fields_become_json_fields():
    record = logging.LogRecord("healthtrack.test", logging.WARNING, __file__, 1, "hello %s", ("you",), None)
    record.rows = 3
    line = orjson.loads(JsonFormatter().format(record))
    assert line["message"] == "hello you" and line["level"] == "WARNING" and line["rows"] == 3
    assert line["request_id"] is None  # outside a request


def test_log_format_json_configures_json_lines_and_bad_values_are_refused():
    code = "import logging; logging.getLogger('healthtrack.request').warning('from a command')"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", code],
        cwd=ROOT, env=_env(LOG_FORMAT="json"), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    line = orjson.loads(result.stderr.strip().splitlines()[-1])
    assert line["message"] == "from a command" and line["logger"] == "healthtrack.request"
    bad = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT, env=_env(LOG_FORMAT="xml"), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert bad.returncode != 0 and "LOG_FORMAT must be 'json' or 'text'" in bad.stderr


def _env(**overrides: str) -> dict[str, str]:
    import os

    return {**os.environ, **overrides}


def test_under_gunicorns_access_log_the_app_leaves_its_fields_instead_of_a_line(settings, user, log_lines):
    settings.REQUEST_LOG_BY_SERVER = True  # gunicorn.conf.py, with the access log on
    response = client_for(user).get("/api/v1/users/me")
    assert response.status_code == 200
    assert log_lines.requests() == []
    assert response.wsgi_request.environ[REQUEST_LOG_ENVIRON_KEY] == {
        "level": logging.INFO, "user_id": user.pk, "ip": "127.0.0.1",
    }  # fmt: skip


@pytest.mark.urls("healthtrack.tests.boom_urls")
def test_under_gunicorns_access_log_a_server_error_is_left_at_error(settings, api_client, log_lines):
    settings.REQUEST_LOG_BY_SERVER = True
    response = api_client.get("/api/v1/boom")
    assert response.status_code == 500
    assert response.wsgi_request.environ[REQUEST_LOG_ENVIRON_KEY]["level"] == logging.ERROR
    assert log_lines.requests() == []
    assert [entry for entry in log_lines() if "RuntimeError" in entry.get("exception", "")]  # still logged
