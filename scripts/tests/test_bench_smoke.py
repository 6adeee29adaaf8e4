"""The benchmark cannot rot: ``scripts/bench.py`` runs end to end on a tiny data set.

It takes the real path (create, migrate and seed a database, two gunicorn servers, real
sign-ins, wrk on every route, the fixed-rate mixed run, memory, the report) with 5 people,
2 seconds of load per route and a gentle mixed rate, against the services this suite
runs on: a database next to the suite's own (PostgreSQL in CI, a SQLite file otherwise)
and the suite's Redis DB when REDIS_URL is set. It checks that everything answered 2xx
and that the report was written, not how fast anything was.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not (shutil.which("wrk") and shutil.which("node")),
    reason="needs wrk and node (apt-get install wrk nodejs; CI installs them)",
)


def smoke_database_url(tmp_path: Path) -> str:
    """A database of its own beside the suite's: ``<suite database>_bench_smoke`` on the
    suite's PostgreSQL server, else a SQLite file."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        parts = urlsplit(url)
        return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "_bench_smoke"))
    return f"sqlite:///{tmp_path / 'bench_smoke.sqlite3'}"


def test_bench_runs_end_to_end(tmp_path):
    output_dir = tmp_path / "results"
    command = [
        sys.executable, str(ROOT / "scripts" / "bench.py"),
        "--users", "5", "--days", "4", "--people", "5",
        "--duration", "2", "--warmup", "0", "--mixed-duration", "2", "--rate", "20",
        "--database-url", smoke_database_url(tmp_path),
        "--redis-url", os.environ.get("REDIS_URL", ""),
        "--output-dir", str(output_dir),
        "--drop-database",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]

    reports = sorted(output_dir.glob("*.json"))
    assert len(reports) == 1 and reports[0].with_suffix(".md").is_file()
    report = json.loads(reports[0].read_text())

    runs = {"ceiling (before)": report["ceiling"]["before"], "ceiling (after)": report["ceiling"]["after"]}
    runs.update(report["routes"])
    assert set(report["routes"]) == {"recommendations", "summary", "list", "create", "bulk"}
    for name, run in runs.items():
        assert run["requests"] > 0 and run["rps"] > 0, name
        assert run["non_2xx"] == 0 and run["wrk_status_errors"] == 0, (name, run)
        # The ceiling serves thousands of requests a second, so max_requests recycles its
        # workers during the run; a request racing a worker's exit may see its keep-alive
        # connection closed. The app's routes stay far below max_requests in 2 seconds.
        allowed = run["requests"] // 100 if name.startswith("ceiling") else 0
        assert run["socket_errors"] <= allowed, (name, run)
        statuses = run["server_log"]["statuses"]
        assert statuses and all(status.startswith("2") for status in statuses), (name, statuses)

    mixed = report["mixed"]
    assert mixed["overall"]["requests"] == 40  # 20 req/s x 2 s
    assert mixed["overall"]["errors"] == 0, mixed["overall"]
    assert set(mixed["routes"]) <= set(report["parameters"]["mixed"]["weights"])
    for name, run in mixed["routes"].items():
        assert all(status.startswith("2") for status in run["statuses"]), (name, run["statuses"])

    workers = report["memory"]["workers"]
    assert len(workers) == report["parameters"]["gunicorn"]["workers"]
    assert all(worker["rss_mb"] > 0 for worker in workers)
    assert len(report["verdicts"]) == 7
    markdown = reports[0].with_suffix(".md").read_text()
    assert (
        "| route | req/s | ratio to ceiling (or measured) | target | pass | p50 ms | p99 ms | errors |"
        in markdown
    )
