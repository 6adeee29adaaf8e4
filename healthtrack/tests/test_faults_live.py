"""PostgreSQL going away under a live gunicorn, and request bodies over the limit.

The server reaches PostgreSQL through a small TCP proxy in this process; cutting the
proxy is PostgreSQL stopping (open connections close, new ones are refused) without
touching the shared server.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import select
import socket
import threading
import time
from urllib.parse import urlsplit

import pytest
from django.db import connection

from healthtrack.tests.live import (
    gunicorn,
    needs_postgresql,
    request,
    session_database_url,
    set_server_password,
)
from users.services import auth_tokens_issue
from users.tests.factories import DEFAULT_PASSWORD, UserFactory

# What the issue allows for an answer while the database is down.
DOWN_ANSWER_SECONDS = 3.0


class CuttableProxy:
    """Forwards 127.0.0.1:<port> to PostgreSQL until cut; restorable on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self.listener: socket.socket | None = None
        self.connections: set[socket.socket] = set()
        self.lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.connections |= {client, upstream}
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while True:
                readable, _, _ = select.select([a, b], [], [], 1.0)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except OSError:
            return
        finally:
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.close()
            with self.lock:
                self.connections -= {a, b}

    def cut(self) -> None:
        """PostgreSQL stops: new connections are refused, open ones are closed."""
        if self.listener is not None:
            with contextlib.suppress(OSError):
                self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
            self.listener.close()
            self.listener = None
        with self.lock:
            open_connections = list(self.connections)
        for sock in open_connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    restore = start


def assert_503_json(response, limit: float = DOWN_ANSWER_SECONDS):
    assert response.seconds <= limit, f"answered after {response.seconds:.2f} s"
    assert response.status == 503, (response.status, response.body[:300])
    assert response.headers["Content-Type"].startswith("application/json")
    return response.json()


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_postgresql_down_answers_503_quickly_and_recovers_without_restart():
    user = UserFactory(username="survivor")
    set_server_password(user, DEFAULT_PASSWORD)
    access = auth_tokens_issue(user=user)["access"]
    bearer = {"Authorization": f"Bearer {access}"}
    db = connection.settings_dict
    proxy = CuttableProxy((db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)))
    proxy.start()
    env = {"DATABASE_URL": session_database_url(host="127.0.0.1", port=proxy.port)}
    try:
        with gunicorn(workers=1, threads=2, env=env) as server:
            assert request(f"{server.url}/health").status == 200
            assert request(f"{server.url}/api/v1/users/me", headers=bearer).status == 200

            proxy.cut()

            health = assert_503_json(request(f"{server.url}/health"))
            assert health == {"status": "error", "database": "error", "cache": "ok"}
            for _ in range(2):  # not just the first request: every one answers in time
                body = assert_503_json(request(f"{server.url}/api/v1/users/me", headers=bearer))
                assert body["code"] == "service_unavailable"
            response = request(
                f"{server.url}/api/v1/auth/token",
                method="POST",
                body={"username": "survivor", "password": DEFAULT_PASSWORD},
            )
            assert assert_503_json(response)["code"] == "service_unavailable"
            assert response.headers["Retry-After"]
            assert_503_json(request(f"{server.url}/api/v1/users", headers=bearer))
            # Routes that need no database still answer normally.
            assert request(f"{server.url}/api/v1/no-such-route", headers=bearer).status == 404

            proxy.restore()

            started = time.monotonic()
            while request(f"{server.url}/health").status != 200:
                assert time.monotonic() - started < 15, "no recovery within 15 s"
                time.sleep(0.25)
            recovered_after = time.monotonic() - started
            assert request(f"{server.url}/api/v1/users/me", headers=bearer).status == 200
            login = request(
                f"{server.url}/api/v1/auth/token",
                method="POST",
                body={"username": "survivor", "password": DEFAULT_PASSWORD},
            )
            assert login.status == 200
            assert "Traceback" not in server.log()
        assert recovered_after < 10
    finally:
        proxy.cut()


# --- Bodies over the limit, declared or chunked --------------------------------------------


def send_raw(url: str, path: str, body_chunks, *, chunked: bool):
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if chunked:
        conn.request("POST", path, body=iter(body_chunks), headers=headers, encode_chunked=True)
    else:
        conn.request("POST", path, body=b"".join(body_chunks), headers=headers)
    response = conn.getresponse()
    result = response.status, dict(response.getheaders()), response.read()
    conn.close()
    return result


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_bodies_over_one_megabyte_are_413_also_when_chunked():
    set_server_password(UserFactory(username="chunky"), DEFAULT_PASSWORD)
    padding = json.dumps({"username": "chunky", "password": "x" * (1_100_000)}).encode()
    small = json.dumps({"username": "chunky", "password": DEFAULT_PASSWORD}).encode()
    with gunicorn(workers=1) as server:
        for chunked in (False, True):
            chunks = [padding[i : i + 65536] for i in range(0, len(padding), 65536)]
            status, headers, body = send_raw(server.url, "/api/v1/auth/token", chunks, chunked=chunked)
            assert status == 413, (chunked, status, body[:200])
            assert headers["Content-Type"].startswith("application/json")
            assert json.loads(body)["code"] == "payload_too_large"

        # A chunked body under the limit reaches the view whole.
        status, _, body = send_raw(server.url, "/api/v1/auth/token", [small[:10], small[10:]], chunked=True)
        assert status == 200, body[:300]
        assert set(json.loads(body)) == {"access", "refresh"}
