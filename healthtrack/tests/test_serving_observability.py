"""gunicorn with the repo's config: JSON logs of its own, and /metrics summed over workers
that come and go (max_requests)."""

from __future__ import annotations

import datetime
import logging
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest
from gunicorn.config import Config
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.mmap_dict import MmapedDict, mmap_key

from healthtrack.logging import REQUEST_LOG_ENVIRON_KEY
from healthtrack.serving import GunicornLogger, multiprocess_dir_prepare, worker_metrics_archive

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")
REQUESTS = 40
API_REQUESTS = 3
HEALTH_COUNT = re.compile(
    r"^django_http_requests_total_by_view_transport_method_total"
    r'\{method="GET",transport="http",view="health"\} ([0-9.e+]+)$',
    re.MULTILINE,
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, **headers: str):
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - local test server
    return urllib.request.urlopen(request, timeout=10)  # noqa: S310


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """gunicorn, 2 workers recycled every 7 requests, LOG_FORMAT=json; its log files."""
    work = tmp_path_factory.mktemp("gunicorn")
    metrics_dir = work / "prometheus"
    metrics_dir.mkdir()
    # A file left by an earlier run: its count must not leak into this one's.
    stale = MmapedDict(str(metrics_dir / "counter_999999.db"))
    stale.write_value(
        mmap_key(
            "django_http_requests_total_by_view_transport_method",
            "django_http_requests_total_by_view_transport_method_total",
            ["view", "transport", "method"], ["health", "http", "GET"], "stale",
        ),
        1000.0, 0.0,
    )  # fmt: skip
    stale.close()
    (work / "static").mkdir()
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECURE_TRANSPORT": "false",
        "SECRET_KEY": "serving-test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "FIELD_ENCRYPTION_KEY": "serving-test-field-key",
        "JWT_SIGNING_KEY": "serving-test-jwt-key-0123456789",
        "ALLOWED_HOSTS": "127.0.0.1",
        "STATIC_ROOT": str(work / "static"),
        "LOG_FORMAT": "json",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_THREADS": "1",
        "GUNICORN_MAX_REQUESTS": "7",
        "GUNICORN_MAX_REQUESTS_JITTER": "0",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    port = _free_port()
    stdout_path, stderr_path = work / "stdout.log", work / "stderr.log"
    with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
        command = [str(GUNICORN), "healthtrack.wsgi", "--config", "gunicorn.conf.py"]
        process = subprocess.Popen(
            [*command, "--bind", f"127.0.0.1:{port}"], cwd=ROOT, env=env, stdout=stdout, stderr=stderr
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail(f"gunicorn did not start: {stderr_path.read_text()[-2000:]}")
    for number in range(REQUESTS):
        assert _get(f"{base}/health?access_token=sekrit-query-{number}", **{"X-Request-ID": f"gun-{number}"})
    for number in range(API_REQUESTS):
        with pytest.raises(urllib.error.HTTPError) as refused:
            _get(
                f"{base}/api/v1/no-such-route?access_token=sekrit-query-api",
                **{"X-Request-ID": f"api-{number}"},
            )
        assert refused.value.code == 404
    scrape = _get(f"{base}/metrics").read().decode()
    files = sorted(path.name for path in metrics_dir.glob("*.db"))
    process.terminate()
    process.wait(timeout=60)
    return {
        "scrape": scrape,
        "files": files,
        "stdout": stdout_path.read_text(),
        "stderr": stderr_path.read_text(),
        "returncode": process.returncode,
    }


def test_metrics_are_summed_over_workers_that_were_recycled(served):
    match = HEALTH_COUNT.search(served["scrape"])
    assert match, served["scrape"][:2000]
    assert float(match.group(1)) == REQUESTS  # every worker's count, nothing stale
    # 40 requests at 7 per worker recycled workers ~5 times; their files were folded into
    # the archive, so a scrape reads a handful of files, not one set per worker ever run.
    assert "counter_archive.db" in served["files"]
    assert len([name for name in served["files"] if name.startswith("counter_")]) <= 4


def test_gunicorn_logs_are_json_lines(served):
    assert served["returncode"] == 0  # a graceful stop
    lines = [
        orjson.loads(line) for line in (served["stdout"] + served["stderr"]).splitlines() if line.strip()
    ]
    # gunicorn's access line is the request's one line, with the app's fields in it.
    (line,) = [line for line in lines if line.get("request_id") == "api-1"]
    assert line["logger"] == "gunicorn.access" and line["level"] == "INFO"
    assert line["method"] == "GET" and line["path"] == "/api/v1/no-such-route" and line["status"] == 404
    assert isinstance(line["duration_ms"], float)
    assert line["remote_addr"] == line["ip"] == "127.0.0.1"
    assert line["user_id"] is None  # signed out
    # Successful probes are DEBUG, as the app logs them: not in an INFO log.
    assert not [line for line in lines if (line.get("request_id") or "").startswith("gun-")]
    errors = [orjson.loads(line) for line in served["stderr"].splitlines() if line.strip()]
    assert any(
        entry["logger"] == "gunicorn.error" and "Booting worker" in entry["message"] for entry in errors
    )
    assert any("Shutting down" in entry["message"] for entry in errors)


def test_no_query_string_reaches_any_log(served):
    assert "sekrit-query" not in served["stdout"] + served["stderr"]


def test_archiving_a_worker_keeps_totals(tmp_path):
    directory = str(tmp_path)
    multiprocess_dir_prepare(directory)
    key = mmap_key("jobs", "jobs_total", ["kind"], ["a"], "Jobs.")
    for pid, value in ((101, 3.0), (102, 4.0), (103, 5.0)):
        values = MmapedDict(os.path.join(directory, f"counter_{pid}.db"))
        values.write_value(key, value, 0.0)
        values.close()

    def total() -> float:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
        text = generate_latest(registry).decode()
        return float(re.search(r'^jobs_total\{kind="a"\} (\S+)$', text, re.MULTILINE).group(1))

    assert total() == 12.0
    worker_metrics_archive(101, directory)
    worker_metrics_archive(102, directory)
    assert total() == 12.0
    assert sorted(os.listdir(directory)) == ["counter_103.db", "counter_archive.db"]
    multiprocess_dir_prepare(directory)  # a new start begins from zero
    assert os.listdir(directory) == []


@pytest.mark.parametrize("log_format", ["json", "text"])
@pytest.mark.parametrize(
    ("status", "app_level", "written_level"),
    [
        ("200 OK", logging.INFO, "INFO"),
        ("500 Internal Server Error", logging.ERROR, "ERROR"),
        ("200 OK", logging.DEBUG, None),  # a probe: quiet at the default level
        ("502 Bad Gateway", None, "ERROR"),  # answered by gunicorn itself: no app fields
    ],
)
def test_the_access_line_carries_the_apps_fields_at_the_apps_level(
    tmp_path, monkeypatch, log_format, status, app_level, written_level
):
    monkeypatch.setenv("LOG_FORMAT", log_format)
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    config = Config()
    config.set("accesslog", str(tmp_path / "access.log"))
    config.set("errorlog", str(tmp_path / "error.log"))
    config.set("access_log_format", "%(s)s user=%({healthtrack.user_id}e)s")
    logger = GunicornLogger(config)
    response = SimpleNamespace(status=status, headers=[("X-Request-ID", "r-1")], sent=2, response_length=2)
    request = SimpleNamespace(
        headers=[], method="GET", uri="/api/v1/x", path="/api/v1/x", query="", version=(1, 1)
    )
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/api/v1/x",
        "RAW_URI": "/api/v1/x",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.1",
    }
    if app_level is not None:
        environ[REQUEST_LOG_ENVIRON_KEY] = {"level": app_level, "user_id": 7, "ip": "203.0.113.9"}
    logger.access(response, request, environ, datetime.timedelta(milliseconds=3))
    text = (tmp_path / "access.log").read_text()
    code = int(status.split()[0])
    user = 7 if app_level is not None else None
    if written_level is None:
        assert text == ""
    elif log_format == "text":
        # Time, level and logger first, as on the app's own text lines.
        assert re.fullmatch(
            rf"\d{{4}}-\d\d-\d\d [\d:,]+ {written_level} gunicorn\.access {code} user={user or '-'}\n", text
        ), text
    else:
        line = orjson.loads(text)
        assert (line["level"], line["logger"], line["status"]) == (written_level, "gunicorn.access", code)
        assert (line["user_id"], line["remote_addr"], line["request_id"]) == (user, "10.0.0.1", "r-1")
        assert line["ip"] == ("203.0.113.9" if user else None)


def test_a_request_gunicorn_answered_itself_is_logged_without_the_apps_fields(tmp_path, monkeypatch):
    monkeypatch.setenv("LOG_FORMAT", "json")
    config = Config()
    config.set("accesslog", str(tmp_path / "access.log"))
    logger = GunicornLogger(config)
    response = SimpleNamespace(status="400 Bad Request", headers=[], sent=0, response_length=0)
    request = SimpleNamespace(headers=[], method="GET", uri="/", path="/", query="", version=(1, 1))
    logger.access(response, request, {"REQUEST_METHOD": "GET", "PATH_INFO": "/"}, datetime.timedelta(0))
    line = orjson.loads((tmp_path / "access.log").read_text())
    assert (line["level"], line["status"], line["user_id"], line["ip"]) == ("INFO", 400, None, None)


def test_with_log_level_debug_the_quiet_lines_are_written_too(tmp_path, monkeypatch):
    monkeypatch.setenv("LOG_FORMAT", "json")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    config = Config()
    config.set("accesslog", str(tmp_path / "access.log"))
    logger = GunicornLogger(config)
    response = SimpleNamespace(status="200 OK", headers=[], sent=2, response_length=2)
    request = SimpleNamespace(
        headers=[], method="GET", uri="/health", path="/health", query="", version=(1, 1)
    )
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/health",
        REQUEST_LOG_ENVIRON_KEY: {"level": logging.DEBUG},
    }
    logger.access(response, request, environ, datetime.timedelta(0))
    assert orjson.loads((tmp_path / "access.log").read_text())["level"] == "DEBUG"
