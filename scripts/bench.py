#!/usr/bin/env python
"""HealthTrack's speed benchmark (``make bench``): throughput against the ceiling of the stack.

    make bench                                          # the full run, about 4 minutes
    make bench BENCH_ARGS="--skip-seed --routes summary,mixed"
    .venv/bin/python scripts/bench.py --skip-seed --keep   # leave both servers up for a profiler

In one run it:

1. prepares a dedicated database (PostgreSQL ``ht_bench`` by default: dropped, created,
   migrated and seeded with ``seed_demo_data``; ``--skip-seed`` reuses it, migrating only)
   and flushes its Redis DB (9 by default);
2. starts gunicorn with the repo's ``gunicorn.conf.py`` on production settings (DEBUG off,
   JSON logs written to a file, rate limits ON with limits raised so nothing is refused),
   and beside it the *ceiling*: a bare Django view returning a JSON constant
   (``scripts/bench/ceiling_settings.py``) under the same gunicorn and config;
3. signs in a pool of demo people (real ``POST /api/v1/auth/token`` calls) and checks each
   route once (status and body);
4. drives the ceiling, then each route, then the ceiling again with ``wrk`` (closed loop:
   maximum throughput, p50/p99), each after a warm-up run that fills the caches;
5. holds mixed traffic (70 % reads, 29 % writes, 1 % sign-ins) at a fixed rate with
   ``scripts/bench/fixed_rate.js`` (open loop: latency from the moment each request was
   due, so a stall is never hidden);
6. reads each gunicorn worker's memory from /proc, and writes the table, the machine and
   every parameter to ``bench-results/<timestamp>.md`` and ``.json``.

Missed targets are reported, not fatal (``--strict`` makes them exit 1); the exit status is
2 when the harness itself could not measure (a tool missing, a server that does not start,
a route that does not answer 2xx before the run). docs/performance.md explains the method.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import json
import os
import platform
import re
import resource
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "scripts" / "bench"
WRK_SCRIPT = BENCH_DIR / "wrk_routes.lua"
FIXED_RATE_SCRIPT = BENCH_DIR / "fixed_rate.js"
GUNICORN = Path(sys.executable).with_name("gunicorn")

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/ht_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"
DEMO_USERNAME = "demo-{:05d}"  # healthtrack.demo_data.generator: demo people are demo-00001...
# Keys and the demo people's shared password exist only on the benchmark database, which
# holds synthetic people; fixed so that --skip-seed can read what an earlier run encrypted.
BENCH_PASSWORD = "bench-demo-password-2026"  # noqa: S105
BENCH_KEYS = {
    "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    "FIELD_ENCRYPTION_KEY": "bench-only-field-key-0123456789",
    "JWT_SIGNING_KEY": "bench-only-jwt-key-0123456789-abcdefghijklmnopqrstuvwxyz",
}
# Rate limits stay ON (their Redis round trips are part of every request's cost) with
# limits no benchmark reaches.
RATE_LIMIT_ENV = {
    "RATE_LIMIT_ENABLED": "true",
    "RATE_LIMIT_REQUESTS_PER_MINUTE": "10000000",
    "RATE_LIMIT_REQUESTS_PER_SECOND": "1000000",
    "RATE_LIMIT_AUTH_ATTEMPTS_PER_IP": "1000000",
    "RATE_LIMIT_AUTH_ATTEMPTS_PER_USERNAME": "1000000",
}
BULK_SAMPLES = 1000
WRK_WRITES_DAYS_BACK = 400
MB = 1_000_000


@dataclass(frozen=True)
class Route:
    name: str
    label: str
    min_ratio: float | None = None  # of the ceiling's req/s
    min_samples_per_s: float | None = None

    @property
    def target(self) -> str:
        if self.min_samples_per_s:
            return f">= {self.min_samples_per_s:,.0f} samples/s"
        return f">= {self.min_ratio:.0%} of ceiling"


ROUTES = (
    Route("recommendations", "GET /api/v1/recommendations/{id} (cache hit)", min_ratio=0.35),
    Route("summary", "GET /api/v1/health-metrics/summary (cache hit)", min_ratio=0.35),
    Route("list", "GET /api/v1/health-metrics/user/{id}?limit=50 (50 rows)", min_ratio=0.18),
    Route("create", "POST /api/v1/health-metrics", min_ratio=0.16),
    Route("bulk", "POST /api/v1/health-metrics/bulk (1,000 samples)", min_samples_per_s=25_000),
)
ROUTE_NAMES = (*(route.name for route in ROUTES), "mixed")
# Mixed traffic: 70 % reads, 29 % writes, 1 % sign-ins (fixed_rate.js knows each route).
MIXED_WEIGHTS = {
    "recommendations": 15,
    "metric_summary": 15,
    "metric_list": 15,
    "metric_get": 10,
    "goal_list": 8,
    "nutrition_list": 7,
    "metric_create": 20,
    "nutrition_create": 9,
    "login": 1,
}
MIXED_P99_MS = 100
WORKER_RSS_LIMIT = 150 * MB


class HarnessError(Exception):
    """The benchmark could not measure (as opposed to: it measured a missed target)."""


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- Small helpers ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Answer:
    status: int
    body: bytes

    def json(self):
        return json.loads(self.body)


def http(method: str, url: str, *, token: str | None = None, body=None, timeout: float = 30) -> Answer:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - our own server
            return Answer(response.status, response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.read())


def jwt_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def run_tool(command: list[str], *, timeout: float) -> tuple[str, str]:
    """Run a load generator to its end; returns (stdout, stderr)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)  # noqa: S603
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise HarnessError(f"{Path(command[0]).name} did not finish within {timeout:.0f} s") from None
    except BaseException:  # Ctrl-C, SIGTERM: the load stops with us
        process.kill()
        process.wait()
        raise
    return stdout.decode(errors="replace"), stderr.decode(errors="replace")


class ChildCpu:
    """CPU seconds used by child processes that ended inside the block (the load generator:
    the servers outlive it)."""

    def __enter__(self):
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.start = usage.ru_utime + usage.ru_stime
        self.seconds = 0.0
        return self

    def __exit__(self, *exc):
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.seconds = usage.ru_utime + usage.ru_stime - self.start
        return False


# --- /proc: CPU and memory -------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def machine_cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already in user
    return total - idle, total


def children_of(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return [int(child) for child in children.read().split()]
    except OSError:
        return []


def process_cpu_seconds(pid: int, *, with_reaped_children: bool = False) -> float:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if with_reaped_children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime: workers that have exited
    return ticks / CLOCK_TICKS


def proc_status_kb(pid: int, *names: str) -> dict[str, int]:
    values = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                key, _, rest = line.partition(":")
                if key in names:
                    values[key] = int(rest.split()[0])
    except OSError:
        pass
    return values


def proc_pss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class MemorySampler(threading.Thread):
    """Samples the resident memory of every worker of a gunicorn master twice a second, so
    workers recycled by max_requests during the run are seen too."""

    def __init__(self, master_pid: int):
        super().__init__(daemon=True)
        self.master_pid = master_pid
        self.peak_rss_kb: dict[int, int] = {}
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.5):
            self.sample()

    def sample(self) -> None:
        for pid in children_of(self.master_pid):
            values = proc_status_kb(pid, "VmRSS", "VmHWM")
            peak = max(values.values(), default=0)
            if peak > self.peak_rss_kb.get(pid, 0):
                self.peak_rss_kb[pid] = peak

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=2)
        self.sample()


# --- The database ------------------------------------------------------------------------


@dataclass
class Database:
    url: str

    @property
    def vendor(self) -> str:
        return "postgresql" if self.url.startswith(("postgres://", "postgresql://")) else "sqlite"

    @property
    def name(self) -> str:
        # sqlite:////abs/path.db is absolute, sqlite:///rel.db relative (django-environ's rule).
        path = unquote(urlsplit(self.url).path)
        return path[1:] if self.vendor == "sqlite" else path.lstrip("/")

    def _admin_connection(self, dbname: str = "postgres"):
        import psycopg

        parts = urlsplit(self.url)
        return psycopg.connect(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password) if parts.password else None,
            dbname=dbname,
            autocommit=True,
            connect_timeout=5,
        )

    def recreate(self) -> None:
        if "bench" not in Path(self.name).name:
            raise HarnessError(
                f"Refusing to drop '{self.name}': the benchmark database's name must contain 'bench' "
                "(it is dropped and created on every run without --skip-seed)."
            )
        if self.vendor == "sqlite":
            path = Path(self.name)
            path.parent.mkdir(parents=True, exist_ok=True)
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    Path(f"{path}{suffix}").unlink()
            return
        from psycopg import sql

        with self._admin_connection() as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
            )
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))

    def drop(self) -> None:
        if self.vendor == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    Path(f"{self.name}{suffix}").unlink()
            return
        from psycopg import sql

        with self._admin_connection() as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
            )

    def vacuum_analyze(self) -> None:
        """What autovacuum does over minutes, at once, before anything is measured: a fresh
        seed (or, with --skip-seed, an earlier run's up to a million written rows) gets its
        visibility map and planner statistics, so no run measures PostgreSQL catching up."""
        if self.vendor == "sqlite":
            return
        with self._admin_connection(self.name) as connection:
            connection.execute("VACUUM (ANALYZE)")

    def backend_cpu_seconds(self) -> dict[int, float]:
        """CPU seconds of each PostgreSQL backend connected to this database (the app's pool)."""
        if self.vendor == "sqlite":
            return {}
        with self._admin_connection() as connection:
            pids = [
                row[0]
                for row in connection.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s", [self.name]
                ).fetchall()
            ]
        return {pid: process_cpu_seconds(pid) for pid in pids}

    def server_version(self) -> str:
        if self.vendor == "sqlite":
            import sqlite3

            return f"SQLite {sqlite3.sqlite_version}"
        with self._admin_connection() as connection:
            return "PostgreSQL " + connection.execute("SHOW server_version").fetchone()[0]


def redis_flush_and_version(url: str) -> str:
    if not url:
        return "none (local-memory cache per process)"
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    client.flushdb()
    return "Redis " + client.info("server")["redis_version"]


def manage(args: list[str], env: dict[str, str], *, timeout: float = 900) -> str:
    result = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise HarnessError(
            f"manage.py {' '.join(args)} failed:\n{result.stdout[-2000:]}{result.stderr[-4000:]}"
        )
    return result.stdout


# --- Servers -----------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen
    log_path: Path
    ready_path: str

    @property
    def master_pid(self) -> int:
        return self.process.pid

    def workers(self) -> list[int]:
        return children_of(self.master_pid)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.master_pid, with_reaped_children=True) + sum(
            process_cpu_seconds(pid) for pid in self.workers()
        )

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()  # gunicorn: graceful shutdown
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def server_base_env() -> dict[str, str]:
    """The caller's environment without anything that would change what is measured:
    gunicorn settings other than workers/threads (so the config's defaults apply),
    a Prometheus directory (each master makes its own)."""
    keep = {"GUNICORN_WORKERS", "GUNICORN_THREADS"}
    return {
        key: value
        for key, value in os.environ.items()
        if not (key.startswith("GUNICORN_") and key not in keep)
        and key not in {"PROMETHEUS_MULTIPROC_DIR", "DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL"}
    }


def app_env(database_url: str, redis_url: str) -> dict[str, str]:
    env = server_base_env()
    env.update(BENCH_KEYS)
    env.update(RATE_LIMIT_ENV)
    env.update(
        {
            "DEBUG": "false",
            "SECURE_TRANSPORT": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": database_url,
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
            "GUNICORN_LOG_LEVEL": "info",
            "GUNICORN_ACCESS_LOG": "-",
            "METRICS_ALLOWED_IPS": "127.0.0.1,::1",
            # Long enough for a profiling session with --keep; the lifetime costs nothing per request.
            "ACCESS_TOKEN_EXPIRE_MINUTES": "240",
        }
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def ceiling_env() -> dict[str, str]:
    env = server_base_env()
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "ceiling_settings",
            "LOG_FORMAT": "json",
            "GUNICORN_LOG_LEVEL": "info",
            "GUNICORN_ACCESS_LOG": "-",
        }
    )
    return env


def gunicorn_config_values() -> dict[str, object]:
    """workers/threads/max_requests as gunicorn.conf.py computes them on this machine."""
    saved = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.gettempdir()  # so the config makes no directory
    try:
        values = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    finally:
        if saved is None:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        else:
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = saved
    names = ("CPUS", "workers", "threads", "worker_class", "keepalive", "max_requests", "max_requests_jitter")
    return {name: values[name] for name in names} | {"preload_app": values["preload_app"]}


def start_server(
    name: str, app: str, env: dict[str, str], run_dir: Path, ready_path: str, extra=()
) -> Server:
    port = free_port()
    env = {**env, "GUNICORN_BIND": f"127.0.0.1:{port}"}
    log_path = run_dir / f"{name}.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(  # noqa: S603
            [str(GUNICORN), app, "--config", "gunicorn.conf.py", *extra],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us; we stop the servers in order
        )
    return Server(
        name=name, url=f"http://127.0.0.1:{port}", process=process, log_path=log_path, ready_path=ready_path
    )


def wait_ready(server: Server, expected_workers: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            raise HarnessError(f"{server.name} server exited at start:\n{server.log_tail()}")
        try:
            if http("GET", server.url + server.ready_path, timeout=5).status == 200 and (
                len(server.workers()) >= expected_workers
            ):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise HarnessError(f"{server.name} server not ready after {timeout:.0f} s:\n{server.log_tail()}")
        time.sleep(0.2)


# --- What the servers say: access log, /metrics -------------------------------------------


def log_offset(server: Server) -> int:
    try:
        return server.log_path.stat().st_size
    except OSError:
        return 0


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return None
    rank = max(1, min(len(sorted_values), -(-len(sorted_values) * p // 100)))
    return sorted_values[int(rank) - 1]


# Access-log paths -> the mixed run's route names, to see where the server's time goes.
ROUTE_PATTERNS = [
    (re.compile(pattern), name)
    for pattern, name in (
        (r"^GET /api/v1/recommendations/\d+$", "recommendations"),
        (r"^GET /api/v1/health-metrics/summary$", "metric_summary"),
        (r"^GET /api/v1/health-metrics/user/\d+$", "metric_list"),
        (r"^GET /api/v1/health-metrics/\d+$", "metric_get"),
        (r"^GET /api/v1/health-goals/user/\d+$", "goal_list"),
        (r"^GET /api/v1/nutrition-logs/user/\d+$", "nutrition_list"),
        (r"^POST /api/v1/health-metrics$", "metric_create"),
        (r"^POST /api/v1/health-metrics/bulk$", "metric_bulk"),
        (r"^POST /api/v1/nutrition-logs$", "nutrition_create"),
        (r"^POST /api/v1/auth/token$", "login"),
    )
]


def route_of(method: str, path: str) -> str:
    line = f"{method} {path}"
    return next((name for pattern, name in ROUTE_PATTERNS if pattern.match(line)), "other")


def log_window(server: Server, start: int) -> dict:
    """What gunicorn's JSON access log says since ``start``: statuses, the time each request
    took inside gunicorn (``duration_ms``: from the request read to the response written,
    without the wait in the listen backlog), worker restarts and logged problems."""
    with open(server.log_path, "rb") as log_file:
        log_file.seek(start)
        data = log_file.read()
    statuses: dict[str, int] = {}
    durations: list[float] = []
    by_route: dict[str, list[float]] = {}
    restarts = 0
    problems = []
    for raw in data.splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        logger = line.get("logger")
        if logger == "gunicorn.access":
            key = str(line.get("status"))
            statuses[key] = statuses.get(key, 0) + 1
            if isinstance(line.get("duration_ms"), int | float):
                durations.append(line["duration_ms"])
                route = route_of(str(line.get("method")), str(line.get("path")))
                by_route.setdefault(route, []).append(line["duration_ms"])
        elif "Autorestarting worker" in str(line.get("message", "")):
            restarts += 1
        elif line.get("level") in ("ERROR", "CRITICAL") or (
            line.get("level") == "WARNING" and logger != "django.request"
        ):
            problems.append(str(line.get("message"))[:200])
    non_2xx = sum(count for status, count in statuses.items() if not status.startswith("2"))
    durations.sort()
    for values in by_route.values():
        values.sort()
    return {
        "requests": sum(statuses.values()),
        "statuses": statuses,
        "server_time_ms": {"p50": percentile(durations, 50), "p99": percentile(durations, 99)},
        "server_time_by_route": {
            route: {
                "requests": len(values),
                "p50_ms": percentile(values, 50),
                "p99_ms": percentile(values, 99),
                "total_s": round(sum(values) / 1000, 1),
            }
            for route, values in sorted(by_route.items())
        },
        "non_2xx": non_2xx,
        "worker_restarts": restarts,
        "problems": problems[:5],
        "problem_count": len(problems),
    }


# What the app's /metrics counts (summed over workers by prometheus_client's multiprocess
# mode); divided by the requests of a run, it shows where a request's time goes: database
# queries, and Redis round trips by operation (rate-limit counters: add + incr; cached reads
# and the auth snapshot: get_many; a "set" stores a freshly computed value, i.e. a miss).
DB_QUERIES = "django_db_execute_total"
REDIS_OPS = "healthtrack_cache_operation_seconds_count"
_METRIC_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?:.*?operation="([^"]*)")?[^}]*\})?\s+(\S+)$')


def scrape_counters(server: Server) -> dict[str, float] | None:
    """``{"db_queries": n, "redis:<operation>": n, ...}`` from the app's /metrics."""
    try:
        answer = http("GET", server.url + "/metrics", timeout=10)
    except OSError:
        return None
    if answer.status != 200:
        return None
    counters: dict[str, float] = {}
    for line in answer.body.decode(errors="replace").splitlines():
        match = _METRIC_LINE.match(line)
        if not match or match.group(1) not in (DB_QUERIES, REDIS_OPS):
            continue
        key = "db_queries" if match.group(1) == DB_QUERIES else f"redis:{match.group(2)}"
        with contextlib.suppress(ValueError):
            counters[key] = counters.get(key, 0.0) + float(match.group(3))
    return counters


def counters_per_request(before, after, requests: int) -> dict | None:
    if not before or not after or requests <= 0:
        return None
    per = {key: (after.get(key, 0.0) - before.get(key, 0.0)) / requests for key in after}
    operations = {
        key.split(":", 1)[1]: round(value, 2) for key, value in per.items() if key.startswith("redis:")
    }
    return {
        "db_queries": round(per.get("db_queries", 0.0), 2),
        "redis_ops": round(sum(operations.values()), 2),
        "redis_by_operation": {name: value for name, value in sorted(operations.items()) if value},
        "cache_sets": operations.get("set", 0.0),
    }


def redis_breakdown(per: dict | None) -> str:
    if not per:
        return ""
    return ", ".join(f"{name} {value:g}" for name, value in per["redis_by_operation"].items())


# --- The run -------------------------------------------------------------------------------


@dataclass
class Person:
    user_id: int
    username: str
    token: str
    metric_ids: list[int] = field(default_factory=list)


def sign_in_people(app: Server, *, users: int, count: int) -> list[Person]:
    """Real sign-ins (Argon2 on the server) for ``count`` demo people spread over the data set."""
    count = min(count, users)
    usernames = [DEMO_USERNAME.format(1 + index * users // count) for index in range(count)]

    def sign_in(username: str) -> Person:
        answer = http(
            "POST", app.url + "/api/v1/auth/token", body={"username": username, "password": BENCH_PASSWORD}
        )
        if answer.status != 200:
            raise HarnessError(
                f"Sign-in as {username} answered {answer.status}: {answer.body[:300]!r}. With --skip-seed, "
                "the database must hold at least --users demo people seeded by this script."
            )
        access = answer.json()["access"]
        return Person(user_id=int(jwt_claims(access)["user_id"]), username=username, token=access)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(sign_in, usernames))


def bulk_samples(*, base_epoch: int, offset: int) -> list[dict]:
    samples = []
    for index in range(BULK_SAMPLES):
        step = offset + index
        at = datetime.datetime.fromtimestamp(base_epoch - step, tz=datetime.UTC).isoformat()
        if index % 2:
            samples.append({"metric_type": "steps", "value": (step * 37) % 2000, "recorded_at": at})
        else:
            samples.append({"metric_type": "heart_rate", "value": 55 + (step * 11) % 80, "recorded_at": at})
    return samples


def check_routes(app: Server, people: list[Person], base_epoch: int, *, shared_cache: bool) -> None:
    """One request per route before anything is measured: a benchmark of 404s measures nothing.

    With a shared cache (Redis), the second read of a cached route must be a hit; without
    one each worker has its own local-memory cache, so the next call may land elsewhere.
    """
    first = people[0]
    api = app.url + "/api/v1"

    def expect(answer: Answer, status: int, what: str):
        if answer.status != status:
            raise HarnessError(f"{what} answered {answer.status}, expected {status}: {answer.body[:500]!r}")
        return answer.json()

    for path, what in (
        (f"/recommendations/{first.user_id}", "GET recommendations"),
        ("/health-metrics/summary", "GET metric summary"),
    ):
        expect(http("GET", api + path, token=first.token), 200, what)
        cached = expect(http("GET", api + path, token=first.token), 200, what).get("cached")
        if shared_cache and cached is not True:
            raise HarnessError(f"{what}: the second call was not served from the cache")
    for person in people:
        page = expect(
            http("GET", f"{api}/health-metrics/user/{person.user_id}?limit=50", token=person.token),
            200,
            "GET metric list",
        )
        if len(page["results"]) != 50:
            raise HarnessError(
                f"{person.username} has {len(page['results'])} metrics, not 50: seed more days"
            )
        person.metric_ids = [row["id"] for row in page["results"][:20]]
    expect(http("GET", f"{api}/health-metrics/{first.metric_ids[0]}", token=first.token), 200, "GET metric")
    expect(http("GET", f"{api}/health-goals/user/{first.user_id}", token=first.token), 200, "GET goals")
    expect(http("GET", f"{api}/nutrition-logs/user/{first.user_id}", token=first.token), 200, "GET meals")
    at = datetime.datetime.fromtimestamp(base_epoch + 3600, tz=datetime.UTC).isoformat()
    expect(
        http(
            "POST",
            api + "/health-metrics",
            token=first.token,
            body={"metric_type": "heart_rate", "value": 70, "unit": "bpm", "recorded_at": at},
        ),
        201,
        "POST metric",
    )
    expect(
        http(
            "POST", api + "/nutrition-logs", token=first.token, body={"meal_type": "snack", "calories": 150}
        ),
        201,
        "POST meal",
    )
    result = expect(
        http(
            "POST",
            api + "/health-metrics/bulk",
            token=first.token,
            body={"samples": bulk_samples(base_epoch=base_epoch + 7200, offset=0)},
        ),
        201,
        "POST bulk",
    )
    if result["created"] != BULK_SAMPLES or result["errors"]:
        raise HarnessError(f"POST bulk stored {result['created']} of {BULK_SAMPLES}: {result['errors'][:3]}")


@dataclass
class Phase:
    """One measured stretch against one server, with what the server and the machine did.

    CPU is split into: the gunicorn master and workers, the load generator, the PostgreSQL
    backends of the benchmark database, and everything else on the machine (Redis, the
    kernel, and other people's processes: a large share means the figures are disturbed).
    """

    server: Server
    database: Database | None

    def __enter__(self):
        time.sleep(0.3)  # the last access lines of what came before are written
        self.log_start = log_offset(self.server)
        self.counters_before = scrape_counters(self.server) if self.database else None
        self.db_cpu0 = self.database.backend_cpu_seconds() if self.database else {}
        self.busy0, self.total0 = machine_cpu_jiffies()
        self.server_cpu0 = self.server.cpu_seconds()
        self.client_cpu = ChildCpu().__enter__()
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.client_cpu.__exit__(*exc)
        self.seconds = time.monotonic() - self.started
        busy1, total1 = machine_cpu_jiffies()
        self.server_cpu = self.server.cpu_seconds() - self.server_cpu0
        db_cpu1 = self.database.backend_cpu_seconds() if self.database else {}
        self.db_cpu = sum(cpu - self.db_cpu0.get(pid, 0.0) for pid, cpu in db_cpu1.items())
        cores = os.cpu_count() or 1
        self.machine_busy_cores = (busy1 - self.busy0) / max(1, total1 - self.total0) * cores
        time.sleep(0.5)  # in-flight requests end and are logged
        self.counters_after = scrape_counters(self.server) if self.database else None
        self.log = log_window(self.server, self.log_start)
        return False

    def resources(self) -> dict:
        server = self.server_cpu / self.seconds
        client = self.client_cpu.seconds / self.seconds
        database = self.db_cpu / self.seconds
        return {
            "machine_busy_cores": round(self.machine_busy_cores, 2),
            "server_cores": round(server, 2),
            "load_generator_cores": round(client, 2),
            "postgres_cores": round(database, 2)
            if self.database and self.database.vendor != "sqlite"
            else None,
            "other_cores": round(max(0.0, self.machine_busy_cores - server - client - database), 2),
        }


def run_wrk(args, server: Server, route: str, seconds: int, people_file: Path, base_epoch: int) -> dict:
    url = server.url
    command = [
        args.wrk, f"-t{args.wrk_threads}", f"-c{args.connections}", f"-d{seconds}s", "--timeout", "10s",
        "-s", str(WRK_SCRIPT), url, "--", route, str(people_file), str(base_epoch),
    ]  # fmt: skip
    stdout, stderr = run_tool(command, timeout=seconds + 60)
    match = re.search(r"^BENCH_JSON (\{.*\})$", stdout, re.MULTILINE)
    if not match:
        raise HarnessError(f"wrk gave no result for {route}:\n{stdout[-1500:]}\n{stderr[-1500:]}")
    return json.loads(match.group(1))


def measure_route(
    args, server: Server, database: Database | None, route: str, people_file: Path, base_epoch: int
) -> dict:
    log(f"{route}: {args.warmup} s warm-up, {args.duration} s measured ({server.name} server)")
    if args.warmup:
        run_wrk(args, server, route, args.warmup, people_file, base_epoch - 50 * 86_400)
    with Phase(server, database) as phase:
        result = run_wrk(args, server, route, args.duration, people_file, base_epoch)
    seconds = result["duration_us"] / 1e6
    socket_errors = sum(result[f"errors_{kind}"] for kind in ("connect", "read", "write", "timeout"))
    non_2xx = phase.log["non_2xx"]
    measured = {
        "route": route,
        "requests": result["requests"],
        "seconds": round(seconds, 3),
        "rps": round(result["requests"] / seconds, 1),
        "latency_ms": {
            name: round(result[f"latency_{name}_us"] / 1000, 2)
            for name in ("p50", "p90", "p99", "max", "mean")
        },
        "socket_errors": socket_errors,
        "wrk_status_errors": result["errors_status"],
        "non_2xx": non_2xx,
        "errors": socket_errors + max(non_2xx, result["errors_status"]),
        "server_log": phase.log,
        "per_request": counters_per_request(phase.counters_before, phase.counters_after, result["requests"]),
        "resources": phase.resources(),
    }
    log(
        f"{route}: {measured['rps']:,.0f} req/s, p50 {measured['latency_ms']['p50']} ms, "
        f"p99 {measured['latency_ms']['p99']} ms, errors {measured['errors']}"
    )
    return measured


def measure_mixed(
    args, app: Server, database: Database, people: list[Person], run_dir: Path, base_epoch: int
) -> dict:
    config = {
        "url": app.url,
        "rate": args.rate,
        "duration_s": args.mixed_duration,
        "warmup_s": args.warmup,
        "timeout_s": 10,
        "max_connections": 64,
        "seed": 1,
        "password": BENCH_PASSWORD,
        "base_epoch": base_epoch,
        "mix": MIXED_WEIGHTS,
        "people": [
            {"user_id": p.user_id, "username": p.username, "token": p.token, "metric_ids": p.metric_ids}
            for p in people
        ],
    }
    config_path = run_dir / "mixed.json"
    config_path.write_text(json.dumps(config))
    log(
        f"mixed: {args.rate} req/s for {args.warmup} s warm-up + {args.mixed_duration} s measured (open loop)"
    )
    with Phase(app, database) as phase:
        stdout, stderr = run_tool(
            [args.node, str(FIXED_RATE_SCRIPT), str(config_path)],
            timeout=args.warmup + args.mixed_duration + 60,
        )
    try:
        result = json.loads(stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise HarnessError(f"fixed_rate.js gave no result:\n{stdout[-1500:]}\n{stderr[-1500:]}") from None
    result["server_log_incl_warmup"] = phase.log
    # Requests gunicorn finished per second over the run (warm-up and tail included, and
    # requests the client had already given up on): when the offered rate is more than the
    # server can do, this is its capacity for the mix.
    result["served_rps"] = round(phase.log["requests"] / phase.seconds, 1)
    result["per_request_incl_warmup"] = counters_per_request(
        phase.counters_before, phase.counters_after, phase.log["requests"]
    )
    result["resources"] = phase.resources()
    overall = result["overall"]
    log(
        f"mixed: sent {result['sent_rate']} req/s, p50 {overall['latency_ms']['p50']} ms, "
        f"p99 {overall['latency_ms']['p99']} ms, max {overall['latency_ms']['max']} ms, "
        f"errors {overall['errors']}"
    )
    return result


def worker_memory(server: Server, sampler: MemorySampler) -> list[dict]:
    workers = []
    for pid in sorted(server.workers()):
        values = proc_status_kb(pid, "VmRSS", "VmHWM")
        pss = proc_pss_kb(pid)
        workers.append(
            {
                "pid": pid,
                "rss_mb": round(values.get("VmRSS", 0) * 1024 / MB, 1),
                "peak_rss_mb": round(values.get("VmHWM", 0) * 1024 / MB, 1),
                "pss_mb": round(pss * 1024 / MB, 1) if pss is not None else None,
            }
        )
    return workers


# --- Report --------------------------------------------------------------------------------


def machine_info(database: Database, redis_version: str, args) -> dict:
    def first_line(command: list[str]) -> str:
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=10)  # noqa: S603
        except (OSError, subprocess.TimeoutExpired):
            return "unknown"
        return (
            (result.stdout or result.stderr).strip().splitlines()[0]
            if (result.stdout or result.stderr)
            else ""
        )

    def field_of(path: str, prefix: str, separator: str) -> str:
        with contextlib.suppress(OSError), open(path) as lines:
            for line in lines:
                if line.startswith(prefix):
                    return line.split(separator, 1)[1].strip().strip('"')
        return "unknown"

    from importlib.metadata import version

    git = first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = first_line(["git", "-C", str(ROOT), "status", "--porcelain"])
    memory_kb = field_of("/proc/meminfo", "MemTotal", ":").split()[0]
    return {
        "cpu": field_of("/proc/cpuinfo", "model name", ":"),
        "cores": os.cpu_count(),
        "memory_gb": round(int(memory_kb) / 1024 / 1024, 1) if memory_kb.isdigit() else None,
        "kernel": platform.release(),
        "os": field_of("/etc/os-release", "PRETTY_NAME", "="),
        "python": platform.python_version(),
        "django": version("Django"),
        "djangorestframework": version("djangorestframework"),
        "gunicorn": version("gunicorn"),
        "psycopg": version("psycopg"),
        "database": database.server_version(),
        "cache": redis_version,
        "wrk": first_line([args.wrk, "-v"]).split(" [")[0],
        "node": first_line([args.node, "--version"]),
        "git": git + (" (uncommitted changes)" if dirty else ""),
    }


def verdicts(report: dict) -> list[dict]:
    """One row per target: route, req/s, ratio, target, pass, p50, p99, errors."""
    rows = []
    ceiling = report["ceiling"]["mean_rps"]
    routes = report["routes"]
    for route in ROUTES:
        if route.name not in routes:
            continue
        measured = routes[route.name]
        ratio = measured["rps"] / ceiling if ceiling else 0.0
        if route.min_samples_per_s:
            samples = measured["rps"] * BULK_SAMPLES
            passed = samples >= route.min_samples_per_s
            achieved = f"{ratio:.1%} = {samples:,.0f} samples/s"
        else:
            passed = ratio >= route.min_ratio
            achieved = f"{ratio:.1%}"
        rows.append(
            {
                "route": route.label,
                "rps": measured["rps"],
                "ratio": round(ratio, 4),
                "achieved": achieved,
                "target": route.target,
                "passed": passed and measured["errors"] == 0,
                "p50_ms": measured["latency_ms"]["p50"],
                "p99_ms": measured["latency_ms"]["p99"],
                "errors": measured["errors"],
                "other_cores": measured["resources"]["other_cores"],
            }
        )
    mixed = report.get("mixed")
    if mixed:
        overall = mixed["overall"]
        rows.append(
            {
                "route": f"mixed 70/29/1, {mixed['rate']:g} req/s for {mixed['duration_s']:g} s (open loop)",
                "rps": mixed["sent_rate"],
                "ratio": None,
                "achieved": f"p99 {overall['latency_ms']['p99']} ms",
                "target": f"p99 < {MIXED_P99_MS} ms, 0 errors",
                "passed": overall["latency_ms"]["p99"] is not None
                and overall["latency_ms"]["p99"] < MIXED_P99_MS
                and overall["errors"] == 0,
                "p50_ms": overall["latency_ms"]["p50"],
                "p99_ms": overall["latency_ms"]["p99"],
                "errors": overall["errors"],
                "other_cores": mixed["resources"]["other_cores"],
            }
        )
    workers = report["memory"]["workers"]
    if workers:
        largest = max(worker["rss_mb"] for worker in workers)
        rows.append(
            {
                "route": f"each gunicorn worker after the run ({len(workers)} workers)",
                "rps": None,
                "ratio": None,
                "achieved": f"max {largest:.0f} MB resident",
                "target": f"< {WORKER_RSS_LIMIT // MB} MB",
                "passed": all(worker["rss_mb"] * MB < WORKER_RSS_LIMIT for worker in workers),
                "p50_ms": None,
                "p99_ms": None,
                "errors": None,
            }
        )
    return rows


def _cell(value, fmt: str = "{}") -> str:
    return "" if value is None else fmt.format(value)


# Cores used by processes other than gunicorn, PostgreSQL's benchmark backends and the load
# generator above which a run is marked as disturbed (a quiet machine shows 0.03-0.2).
DISTURBED_CORES = 0.25


def _disturbance(other_cores: float | None) -> str:
    if other_cores is None:
        return ""
    return f"{other_cores} (disturbed)" if other_cores > DISTURBED_CORES else f"{other_cores}"


def table_lines(rows: list[dict]) -> list[str]:
    header = [
        "route",
        "req/s",
        "ratio to ceiling (or measured)",
        "target",
        "pass",
        "p50 ms",
        "p99 ms",
        "errors",
        "other CPU",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [
            row["route"],
            _cell(row["rps"], "{:,.0f}"),
            row["achieved"],
            row["target"],
            "PASS" if row["passed"] else "FAIL",
            _cell(row["p50_ms"]),
            _cell(row["p99_ms"]),
            _cell(row["errors"]),
            _disturbance(row.get("other_cores")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _paren(text: str) -> str:
    return f" ({text})" if text else ""


def _machine_line(machine: dict) -> str:
    return (
        f"{machine['cpu']}, {machine['cores']} cores, {machine['memory_gb']} GB RAM, {machine['os']}, "
        f"kernel {machine['kernel']}. Python {machine['python']}, Django {machine['django']}, "
        f"DRF {machine['djangorestframework']}, gunicorn {machine['gunicorn']}, "
        f"psycopg {machine['psycopg']}, {machine['database']}, {machine['cache']}, {machine['wrk']}, "
        f"node {machine['node']}. Code: {machine['git']}."
    )


def _cpu_cells(resources: dict) -> str:
    return " | ".join(
        _cell(resources.get(key))
        for key in (
            "server_cores",
            "postgres_cores",
            "load_generator_cores",
            "other_cores",
            "machine_busy_cores",
        )
    )


def markdown(report: dict) -> str:
    machine, ceiling = report["machine"], report["ceiling"]
    before, after = ceiling["before"]["rps"], ceiling["after"]["rps"]
    lines = [
        f"# HealthTrack benchmark, {report['started_at']}",
        "",
        f"Machine: {_machine_line(machine)}",
        "",
        f"Load average before the run: {report['load_before']}; after: {report['load_after']}. "
        f"Wall time: {report['timings_s']['total']:.0f} s.",
        "",
        *table_lines(report["verdicts"]),
        "",
        f"Ceiling (bare Django JSON view, same gunicorn and config): {before:,.0f} req/s before the "
        f"routes, {after:,.0f} after (drift {ceiling['drift']:+.1%}); ratios use the mean, "
        f"{ceiling['mean_rps']:,.0f} req/s.",
        "",
        "## Where the time goes",
        "",
        "Latency is wrk's, from the client; \"in gunicorn\" is the access log's duration of each "
        "request inside the server (without the wait for a worker). Per request: counters from the "
        "app's /metrics. CPU: cores used on average during the run, by gunicorn (master and "
        "workers), the benchmark database's PostgreSQL backends, the load generator, and everything "
        "else on the machine (Redis, the kernel, other processes: a large share means the run was "
        "disturbed).",
        "",
        "| run | req/s | p90 ms | max ms | in gunicorn p50/p99 ms | DB queries | Redis round trips "
        "| cache sets | gunicorn CPU | PostgreSQL CPU | wrk CPU | other CPU | machine busy "
        "| worker restarts |",
        "|" + "---|" * 14,
    ]
    runs = [
        ("ceiling (before)", ceiling["before"]),
        *report["routes"].items(),
        ("ceiling (after)", ceiling["after"]),
    ]
    for name, result in runs:
        per = result.get("per_request") or {}
        latency = result["latency_ms"]
        redis = f"{_cell(per.get('redis_ops'))}{_paren(redis_breakdown(per))}"
        inside = result["server_log"]["server_time_ms"]
        lines.append(
            f"| {name} | {result['rps']:,.0f} | {latency['p90']} | {latency['max']} "
            f"| {inside['p50']}/{inside['p99']} "
            f"| {_cell(per.get('db_queries'))} | {redis} "
            f"| {_cell(per.get('cache_sets'))} | {_cpu_cells(result['resources'])} "
            f"| {result['server_log']['worker_restarts']} |"
        )
    mixed = report.get("mixed")
    if mixed:
        overall = mixed["overall"]
        server_time = mixed["server_log_incl_warmup"]["server_time_ms"]
        answered_rate = overall["answered_2xx"] / mixed["duration_s"]
        lines += [
            "",
            f"## Mixed traffic: {mixed['rate']:g} req/s, {mixed['duration_s']:g} s measured after "
            f"{mixed['warmup_s']:g} s of warm-up (open loop)",
            "",
            f"Sent at {mixed['sent_rate']} req/s over {mixed['connections_opened']} connections (generator "
            f"lag p99 {overall['send_lag_ms']['p99']} ms, max {overall['send_lag_ms']['max']} ms); answered "
            f"2xx within {mixed['timeout_s']:g} s: {answered_rate:.1f} req/s; gunicorn finished "
            f"{mixed['served_rps']} req/s over the run (its capacity for this mix when that is below the "
            "offered rate). "
            f"Time inside gunicorn (warm-up included): p50 {server_time['p50']} ms, p99 {server_time['p99']} "
            "ms. Latency counts from the moment each request was due; requests abandoned after "
            f"{mixed['timeout_s']:g} s are errors and count in the percentiles at that time.",
            "",
            "| route | requests | p50 ms | p90 ms | p99 ms | max ms | errors | statuses "
            "| in gunicorn p50/p99 ms (whole run) | gunicorn thread-seconds |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        inside_by_route = mixed["server_log_incl_warmup"]["server_time_by_route"]
        for name, result in [("all", overall), *mixed["routes"].items()]:
            latency = result["latency_ms"]
            statuses = ", ".join(f"{code}: {count}" for code, count in sorted(result["statuses"].items()))
            if result["socket_errors"]:
                statuses += "; " + ", ".join(f"{code}: {n}" for code, n in result["socket_errors"].items())
            inside = (
                {"p50_ms": server_time["p50"], "p99_ms": server_time["p99"], "total_s": None}
                if name == "all"
                else inside_by_route.get(name, {})
            )
            lines.append(
                f"| {name} | {result['requests']} | {latency['p50']} | {latency['p90']} | {latency['p99']} "
                f"| {latency['max']} | {result['errors']} | {statuses} "
                f"| {inside.get('p50_ms')}/{inside.get('p99_ms')} | {_cell(inside.get('total_s'))} |"
            )
        per = mixed.get("per_request_incl_warmup") or {}
        resources = mixed["resources"]
        lines += [
            "",
            f"Per request (warm-up included): {per.get('db_queries')} DB queries, {per.get('redis_ops')} "
            f"Redis round trips{_paren(redis_breakdown(per))}, {per.get('cache_sets')} cache sets "
            "(values computed afresh and stored). CPU (cores): gunicorn "
            f"{resources['server_cores']}, PostgreSQL {resources['postgres_cores']}, generator "
            f"{resources['load_generator_cores']}, other {resources['other_cores']}; machine busy "
            f"{resources['machine_busy_cores']} of {machine['cores']}.",
        ]
    memory = report["memory"]
    lines += [
        "",
        "## Worker memory after the run",
        "",
        "| worker pid | RSS MB | peak RSS MB (VmHWM) | PSS MB |",
        "|---|---|---|---|",
        *(
            f"| {w['pid']} | {w['rss_mb']} | {w['peak_rss_mb']} | {_cell(w['pss_mb'])} |"
            for w in memory["workers"]
        ),
        "",
        f"Largest resident size seen in any worker (sampled every 0.5 s, recycled workers included): "
        f"{memory['largest_seen_mb']} MB, over {memory['workers_seen']} worker processes. MB = 10^6 bytes.",
        "",
        "## Parameters",
        "",
        "```json",
        json.dumps(report["parameters"], indent=2),
        "```",
    ]
    return "\n".join(lines) + "\n"


# --- Main ----------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=1000, help="demo people to seed (default 1000)")
    parser.add_argument("--days", type=int, default=30, help="days of data per person (default 30)")
    parser.add_argument(
        "--people", type=int, default=50, help="people signed in to send requests (default 50)"
    )
    parser.add_argument(
        "--duration", type=int, default=15, help="measured seconds per wrk route (default 15)"
    )
    parser.add_argument(
        "--warmup", type=int, default=3, help="warm-up seconds before each run, 0 for none (default 3)"
    )
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--rate", type=float, default=170, help="mixed traffic, requests/s (default 170)")
    parser.add_argument("--mixed-duration", type=int, default=60, help="mixed traffic seconds (default 60)")
    parser.add_argument(
        "--routes",
        default=",".join(ROUTE_NAMES),
        help=f"comma-separated subset of {','.join(ROUTE_NAMES)} (the ceiling always runs)",
    )
    parser.add_argument("--skip-seed", action="store_true", help="reuse the seeded database (migrate only)")
    parser.add_argument("--keep", action="store_true", help="leave both servers running (for a profiler)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--drop-database", action="store_true", help="drop the benchmark database at the end (smoke test)"
    )
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--output-dir", type=Path, default=ROOT / "bench-results")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    parser.add_argument("--node", default=shutil.which("node") or "node")
    args = parser.parse_args(argv)
    args.routes = [name.strip() for name in args.routes.split(",") if name.strip()]
    unknown = sorted(set(args.routes) - set(ROUTE_NAMES))
    if unknown:
        parser.error(f"unknown route(s): {', '.join(unknown)}; choose from {', '.join(ROUTE_NAMES)}")
    return args


def run(args) -> int:
    for tool in (args.wrk, args.node):
        if not shutil.which(tool):
            raise HarnessError(f"'{tool}' not found (apt-get install wrk nodejs)")
    started_at = datetime.datetime.now(tz=datetime.UTC)
    stamp = started_at.strftime("%Y%m%d-%H%M%S")
    load_before = [round(value, 2) for value in os.getloadavg()]
    database = Database(args.database_url)
    env = app_env(args.database_url, args.redis_url)
    gunicorn_values = gunicorn_config_values()
    run_dir = Path(tempfile.mkdtemp(prefix=f"ht-bench-{stamp}-"))
    servers: list[Server] = []
    sampler = None
    keep = False
    timings: dict[str, float] = {}
    clock = [time.monotonic()]

    def lap(name: str) -> None:
        now = time.monotonic()
        timings[name] = round(now - clock[0], 1)
        clock[0] = now

    try:
        if args.skip_seed:
            log(f"Reusing {database.vendor} database {database.name}; migrating")
            manage(["migrate", "--noinput", "-v0"], env)
            seeded = None
        else:
            log(f"Creating {database.vendor} database {database.name}; migrating")
            database.recreate()
            manage(["migrate", "--noinput", "-v0"], env)
            log(f"Seeding {args.users} people x {args.days} days")
            seed_started = time.monotonic()
            output = manage(
                ["seed_demo_data", "--users", str(args.users), "--days", str(args.days), "--seed", "1",
                 "--password", BENCH_PASSWORD],
                env,
            )  # fmt: skip
            seeded = {
                "seconds": round(time.monotonic() - seed_started, 1),
                "output": output.strip().splitlines(),
            }
            log(seeded["output"][-1] if seeded["output"] else "seeded")
        database.vacuum_analyze()
        redis_version = redis_flush_and_version(args.redis_url)
        lap("database")

        app = start_server("app", "healthtrack.wsgi", env, run_dir, "/health")
        servers.append(app)
        ceiling = start_server(
            "ceiling", "ceiling_wsgi:application", ceiling_env(), run_dir, "/",
            extra=("--pythonpath", str(BENCH_DIR)),
        )  # fmt: skip
        servers.append(ceiling)
        for server in servers:
            wait_ready(server, int(gunicorn_values["workers"]))
        log(
            f"app {app.url} and ceiling {ceiling.url}: {gunicorn_values['workers']} workers x "
            f"{gunicorn_values['threads']} threads each; logs in {run_dir}"
        )
        sampler = MemorySampler(app.master_pid)
        sampler.start()
        lap("servers")

        log(f"Signing in {min(args.people, args.users)} demo people")
        people = sign_in_people(app, users=args.users, count=args.people)
        people_file = run_dir / "people.tsv"
        people_file.write_text("".join(f"{p.user_id}\t{p.token}\n" for p in people))
        now = int(time.time()) - 60
        # The wrk runs' POSTs (up to a million samples) are dated from 400 days back, outside
        # every 30-day window the read routes look at, so they never change what the reads
        # (or a --skip-seed rerun) measure. The mixed run's writes are dated now, like a
        # client's: they do invalidate the writer's cached reads, which is part of the mix.
        write_epoch = now - WRK_WRITES_DAYS_BACK * 86_400
        check_routes(app, people, write_epoch, shared_cache=bool(args.redis_url))
        log("Every route answered as expected")
        lap("sign_in_and_checks")

        # Mixed traffic first: it asks whether the node holds 10,000 requests a minute in a
        # steady state, which two and a half minutes of saturating wrk runs just before it
        # are not (docs/performance.md, "Order of the runs").
        mixed = measure_mixed(args, app, database, people, run_dir, now) if "mixed" in args.routes else None
        lap("mixed")
        ceiling_before = measure_route(args, ceiling, None, "ceiling", people_file, write_epoch)
        routes = {}
        for route in ROUTES:
            if route.name in args.routes:
                routes[route.name] = measure_route(args, app, database, route.name, people_file, write_epoch)
        ceiling_after = measure_route(args, ceiling, None, "ceiling", people_file, write_epoch)
        lap("wrk_runs")
        sampler.stop()
        workers = worker_memory(app, sampler)
        mean_rps = (ceiling_before["rps"] + ceiling_after["rps"]) / 2
        report = {
            "started_at": started_at.isoformat(timespec="seconds"),
            "finished_at": datetime.datetime.now(tz=datetime.UTC).isoformat(timespec="seconds"),
            "load_before": load_before,
            "load_after": [round(value, 2) for value in os.getloadavg()],
            "machine": machine_info(database, redis_version, args),
            "parameters": {
                "database": f"{database.vendor} {database.name}",
                "redis": args.redis_url or None,
                "seeded": seeded or "reused (--skip-seed)",
                "users": args.users,
                "days": args.days,
                "people_signed_in": len(people),
                "gunicorn": gunicorn_values,
                "wrk": {
                    "threads": args.wrk_threads,
                    "connections": args.connections,
                    "warmup_s": args.warmup,
                    "duration_s": args.duration,
                    "timeout_s": 10,
                },
                "mixed": {
                    "rate": args.rate,
                    "duration_s": args.mixed_duration,
                    "warmup_s": args.warmup,
                    "weights": MIXED_WEIGHTS,
                    "max_connections": 64,
                },
                "server_env": {
                    key: env[key]
                    for key in (
                        "DEBUG",
                        "SECURE_TRANSPORT",
                        "LOG_FORMAT",
                        "LOG_LEVEL",
                        "GUNICORN_ACCESS_LOG",
                        "ACCESS_TOKEN_EXPIRE_MINUTES",
                        *RATE_LIMIT_ENV,
                    )
                },
                "logs": "gunicorn access log with the app's fields (one JSON line per request), to a file",
                "routes": args.routes,
            },
            "ceiling": {
                "before": ceiling_before,
                "after": ceiling_after,
                "mean_rps": round(mean_rps, 1),
                "drift": round((ceiling_after["rps"] - ceiling_before["rps"]) / ceiling_before["rps"], 4),
            },
            "timings_s": timings | {"total": round(sum(timings.values()), 1)},
            "routes": routes,
            "mixed": mixed,
            "memory": {
                "workers": workers,
                "largest_seen_mb": round(max(sampler.peak_rss_kb.values(), default=0) * 1024 / MB, 1),
                "workers_seen": len(sampler.peak_rss_kb),
            },
        }
        report["verdicts"] = verdicts(report)
        args.output_dir.mkdir(parents=True, exist_ok=True)
        json_path = args.output_dir / f"{stamp}.json"
        md_path = args.output_dir / f"{stamp}.md"
        json_path.write_text(json.dumps(report, indent=2) + "\n")
        md_path.write_text(markdown(report))
        print()
        print("\n".join(table_lines(report["verdicts"])))
        print(
            f"\nCeiling {ceiling_before['rps']:,.0f} -> {ceiling_after['rps']:,.0f} req/s "
            f"(drift {report['ceiling']['drift']:+.1%}); load average {load_before} -> {report['load_after']}"
        )
        print(f"Written: {md_path.relative_to(ROOT) if md_path.is_relative_to(ROOT) else md_path} and .json")
        print(f"Wall time {report['timings_s']['total']:.0f} s: {timings}")
        if args.keep:
            keep = True
            print(
                f"\nServers left running (--keep): app {app.url} (master pid {app.master_pid}), "
                f"ceiling {ceiling.url} (master pid {ceiling.master_pid}).\n"
                f"Tokens: {people_file} (user_id<TAB>token, valid 4 h). Logs: {run_dir}.\n"
                f"Load a route again (ceiling|recommendations|summary|list|create|bulk):\n"
                f"  wrk -t{args.wrk_threads} -c{args.connections} -d30s --timeout 10s -s {WRK_SCRIPT} "
                f"{app.url} -- summary {people_file} {write_epoch}\n"
                f"Workers to attach a profiler to (e.g. py-spy record --pid PID): "
                f"{' '.join(map(str, app.workers()))}\n"
                f"Stop them with: kill {app.master_pid} {ceiling.master_pid}"
            )
        missed = [row["route"] for row in report["verdicts"] if not row["passed"]]
        if missed:
            print(f"\nMissed targets: {'; '.join(missed)}")
        return 1 if args.strict and missed else 0
    finally:
        if sampler is not None:
            sampler.stopped.set()
        if not keep:
            for server in servers:
                server.stop()
            shutil.rmtree(run_dir, ignore_errors=True)
            if args.drop_database:
                database.drop()


def main(argv=None) -> int:
    args = parse_args(argv)

    def terminate(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    # Also when started in the background by a shell, which leaves SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return run(args)
    except HarnessError as error:
        print(f"\nbench: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nbench: interrupted; servers stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
