"""gunicorn with the repo's config: JSON logs of its own, and /metrics summed over workers
that come and go (max_requests)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.mmap_dict import MmapedDict, mmap_key

from healthtrack.serving import multiprocess_dir_prepare, worker_metrics_archive

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")
REQUESTS = 40
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
    access = [orjson.loads(line) for line in served["stdout"].splitlines() if line.strip()]
    by_request = {line["request_id"]: line for line in access}
    line = by_request["gun-5"]
    assert line["logger"] == "gunicorn.access" and line["level"] == "INFO"
    assert line["method"] == "GET" and line["path"] == "/health" and line["status"] == 200
    assert isinstance(line["duration_ms"], float)
    assert line["remote_addr"] == "127.0.0.1"
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
