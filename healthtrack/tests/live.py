"""Run the real stack for a test: gunicorn with the repo's config, on the test database.

Tests that need more than one process (exact rate limits across workers, racing token
refreshes, a database that goes away) start gunicorn here. It runs with production
settings (DEBUG off) against the test database pytest-django created, with the same
keys as the test process, so users and tokens made in the test work in the server.
Such tests use ``transactional_db`` so what they write is committed and visible.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")


def on_postgresql() -> bool:
    return os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))


def on_redis() -> bool:
    return bool(os.environ.get("REDIS_URL"))


needs_postgresql = pytest.mark.skipif(
    not on_postgresql(), reason="needs DATABASE_URL pointing at PostgreSQL (CI sets it)"
)
needs_postgresql_and_redis = pytest.mark.skipif(
    not (on_postgresql() and on_redis()),
    reason="needs DATABASE_URL (PostgreSQL) and REDIS_URL (CI sets both)",
)


def set_server_password(user, password: str) -> None:
    """Store ``password`` hashed with Argon2, which the server verifies (tests hash with
    MD5 for speed, a hasher production settings do not accept)."""
    from django.contrib.auth.hashers import Argon2PasswordHasher

    hasher = Argon2PasswordHasher()
    user.password = hasher.encode(password, hasher.salt())
    user.save(update_fields=["password"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def session_database_url(*, host: str | None = None, port: int | None = None) -> str:
    """The URL of the database this test session runs on (the ``test_`` one)."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = host or db["HOST"] or "127.0.0.1"
    port = port or db["PORT"] or 5432
    return f"postgres://{credentials}@{host}:{port}/{db['NAME']}"


def server_env(**overrides: str) -> dict[str, str]:
    """Production settings with the test process's keys and the test database."""
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECURE_TRANSPORT": "false",
        "SECRET_KEY": settings.SECRET_KEY,
        "SECRET_KEY_FALLBACKS": ",".join(settings.SECRET_KEY_FALLBACKS),
        "FIELD_ENCRYPTION_KEY": settings.FIELD_ENCRYPTION_KEY,
        "FIELD_ENCRYPTION_KEY_FALLBACKS": ",".join(settings.FIELD_ENCRYPTION_KEY_FALLBACKS),
        "JWT_SIGNING_KEY": settings.JWT_SIGNING_KEY,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "GUNICORN_ACCESS_LOG": "/dev/null",
        "GUNICORN_LOG_LEVEL": "warning",
        "LOG_LEVEL": "WARNING",
        # Tests that are about rate limits switch them on; the others send bursts.
        "RATE_LIMIT_ENABLED": "false",
    }
    if on_postgresql():
        env["DATABASE_URL"] = session_database_url()
    env.update(overrides)
    return env


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    def json(self):
        return json.loads(self.body)


def request(
    url: str,
    *,
    method: str = "GET",
    body: object = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> Response:
    """One HTTP request on a fresh connection; errors are answers, not exceptions."""
    data = None if body is None else json.dumps(body).encode()
    all_headers = {"Content-Type": "application/json"} if data is not None else {}
    all_headers.update(headers or {})
    started = time.monotonic()
    req = urllib.request.Request(url, data=data, method=method, headers=all_headers)  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:  # noqa: S310 - local server
            body = response.read()
            return Response(response.status, dict(response.headers), body, time.monotonic() - started)
    except urllib.error.HTTPError as error:
        return Response(error.code, dict(error.headers), error.read(), time.monotonic() - started)


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def gunicorn(*, workers: int = 1, threads: int = 2, env: dict[str, str] | None = None) -> Iterator[Server]:
    """Serve the app with ``gunicorn.conf.py`` until the block ends."""
    port = free_port()
    log_file = tempfile.NamedTemporaryFile(prefix="gunicorn-", suffix=".log", delete=False)  # noqa: SIM115
    process_env = server_env(**(env or {}))
    process_env.update({"GUNICORN_WORKERS": str(workers), "GUNICORN_THREADS": str(threads)})
    process = subprocess.Popen(
        [str(GUNICORN), "healthtrack.wsgi", "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT, env=process_env, stdout=log_file, stderr=subprocess.STDOUT,
    )  # fmt: skip
    server = Server(url=f"http://127.0.0.1:{port}", process=process, log_path=Path(log_file.name))
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"gunicorn exited: {server.log()[-3000:]}")
            try:
                if request(f"{server.url}/health", timeout=5).status in (200, 503):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"gunicorn did not start: {server.log()[-3000:]}")
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log_file.close()
        with contextlib.suppress(OSError):
            os.unlink(log_file.name)
