"""The production stack for real: gunicorn with the repo's config, whitenoise static files."""

import gc
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
import weakref
from pathlib import Path
from unittest import mock

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def gunicorn_server(tmp_path_factory):
    static_root = tmp_path_factory.mktemp("static")
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECURE_TRANSPORT": "false",
        "SECRET_KEY": "serving-test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "FIELD_ENCRYPTION_KEY": "serving-test-field-key",
        "JWT_SIGNING_KEY": "serving-test-jwt-key-0123456789",
        "ALLOWED_HOSTS": "127.0.0.1",
        "STATIC_ROOT": str(static_root),
        "GUNICORN_WORKERS": "1",
    }
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=ROOT, env=env, check=True, timeout=120,
    )  # fmt: skip
    port = _free_port()
    process = subprocess.Popen(
        [str(GUNICORN), "healthtrack.wsgi", "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base}/admin/login/", timeout=2)  # noqa: S310 - local test server
            break
        except OSError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail(f"gunicorn did not start: {process.stderr.read().decode()[-2000:]}")
    yield base
    process.terminate()
    process.wait(timeout=30)


def test_admin_is_styled_under_gunicorn(gunicorn_server):
    page = urllib.request.urlopen(f"{gunicorn_server}/admin/login/").read().decode()  # noqa: S310
    stylesheets = re.findall(r'href="(/static/[^"]+\.css)"', page)
    assert stylesheets, "the admin login page links no stylesheet"
    for href in stylesheets:
        response = urllib.request.urlopen(f"{gunicorn_server}{href}")  # noqa: S310
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/css")
        # whitenoise serves hashed names with a far-future cache lifetime
        assert "max-age" in response.headers.get("Cache-Control", "")


def test_docs_assets_are_local_under_gunicorn(gunicorn_server):
    page = urllib.request.urlopen(f"{gunicorn_server}/docs").read().decode()  # noqa: S310
    scripts = re.findall(r'src="(/static/[^"]+\.js)"', page)
    assert scripts
    for src in scripts:
        assert urllib.request.urlopen(f"{gunicorn_server}{src}").status == 200  # noqa: S310


def _raw_request(base: str, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (urllib would refuse a malformed request) and parse the answer."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, value in (line.split(":", 1) for line in header_lines)}
    return int(status_line.split()[1]), headers, body


def test_a_request_line_over_the_limit_is_a_json_414(gunicorn_server):
    """Found by schemathesis: a long query string got gunicorn's HTML 414 page."""
    query = "&".join(f"skip={'9' * 40}" for _ in range(120))  # > 4094 bytes
    status, headers, body = _raw_request(
        gunicorn_server, f"GET /api/v1/users?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    )
    assert status == 414
    assert headers["content-type"] == "application/json"
    assert headers["x-content-type-options"] == "nosniff"
    error = json.loads(body)
    assert error["code"] == "uri_too_long"
    assert "4094" in error["detail"]


def test_a_malformed_header_is_a_json_400(gunicorn_server):
    status, headers, body = _raw_request(
        gunicorn_server, b"GET /api/v1/users HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header: x\r\n\r\n"
    )
    assert status == 400
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["code"] == "bad_request"


def test_json_error_response_is_a_whole_http_response():
    from healthtrack.serving import json_error_response

    raw = json_error_response(431, "Request Header Fields Too Large", "Error parsing headers: 'x'")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert f"Content-Length: {len(body)}".encode() in head
    assert json.loads(body) == {
        "detail": "Error parsing headers: 'x'",
        "code": "request_header_fields_too_large",
    }


_ARGON2_RESIDENT_PROBE = """
import os, sys, threading
if sys.argv[1] == "tuned":
    from healthtrack.serving import malloc_return_large_blocks
    assert malloc_return_large_blocks()
from django.conf import settings
settings.configure()
from healthtrack.hashers import OwaspArgon2PasswordHasher

def resident_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))

hasher = OwaspArgon2PasswordHasher()
hasher.encode("warm up the imports", hasher.salt())
before = resident_kb()
threads = [
    threading.Thread(target=lambda: [hasher.encode("a password", hasher.salt()) for _ in range(2)])
    for _ in range(3)
]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(resident_kb() - before)
"""


def _resident_growth_after_sign_ins_mb(mode: str) -> float:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MALLOC_")}
    result = subprocess.run(
        [sys.executable, "-c", _ARGON2_RESIDENT_PROBE, mode],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(result.stdout.strip()) / 1024


def test_gunicorn_master_makes_freed_argon2_buffers_go_back_to_the_system():
    # Three threads hashing like sign-ins: glibc's default keeps their 19 MiB buffers in
    # each thread's heap; the config's malloc setting (inherited by the workers) does not.
    assert _resident_growth_after_sign_ins_mb("default") > 30
    assert _resident_growth_after_sign_ins_mb("tuned") < 10


def test_an_operators_malloc_environment_is_left_alone(monkeypatch):
    from healthtrack.serving import malloc_return_large_blocks

    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "4194304")
    assert malloc_return_large_blocks() is False


@pytest.mark.parametrize(
    ("content_length", "trimmed"),
    [(None, False), ("", False), ("not a number", False), ("1024", False), (str(64 * 1024), True)],
)
def test_memory_is_released_only_after_large_request_bodies(content_length, trimmed):
    from healthtrack.serving import memory_release_after_large_request

    environ = {} if content_length is None else {"CONTENT_LENGTH": content_length}
    with mock.patch("gc.collect") as collect:
        assert memory_release_after_large_request(environ) is trimmed
    assert collect.called is trimmed


def test_gunicorn_parses_requests_with_its_c_parser(monkeypatch):
    """gunicorn.conf.py asks for the fast parser (gunicorn-h1c) and it is usable, so
    gunicorn does not fall back to its pure-Python one or fail every request."""
    import runpy

    from gunicorn.config import Config
    from gunicorn.http import message

    monkeypatch.delenv("GUNICORN_HTTP_PARSER", raising=False)
    monkeypatch.setenv("REQUEST_LOG_BY_SERVER", "false")  # restored after: the config sets it
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert settings["http_parser"] == "fast"
    config = Config()
    config.set("http_parser", settings["http_parser"])
    assert message._check_fast_parser(config) is True


@pytest.mark.parametrize(
    "raw",
    [
        # Both lengths: a smuggling attempt, refused rather than guessed at.
        b"POST /api/v1/health-metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET /api/v1/users HTTP/1.1\nHost: 127.0.0.1\n\n",  # bare LF line ends
        b"GET /api/v1/users HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Folded: a\r\n b\r\n\r\n",  # obs-fold
        b"G\x00T /api/v1/users HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        b"GET /api/v1/users HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n",
    ],
)
def test_malformed_requests_are_refused_with_json(gunicorn_server, raw):
    status, headers, body = _raw_request(gunicorn_server, raw)
    assert 400 <= status < 600 and status != 500, (status, body)
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["code"]


def test_a_large_requests_objects_left_in_cycles_are_freed_before_the_next_request():
    """What a bulk upload leaves behind: objects in a cycle that outlived collections while
    the request ran, so they sit in the oldest generation; a young collection does not
    free them, the hook does."""
    from healthtrack.serving import memory_release_after_large_request

    class RequestLike:
        pass

    request = RequestLike()
    request.view = RequestLike()
    request.view.request = request  # DRF's view and request refer to each other
    left = weakref.ref(request)
    gc.collect()  # survived while in use: now in the oldest generation
    del request
    gc.collect(1)
    assert left() is not None
    assert memory_release_after_large_request({"CONTENT_LENGTH": str(64 * 1024)})
    assert left() is None


def test_the_master_freezes_its_objects_before_forking_a_worker():
    from healthtrack.serving import objects_freeze_before_fork

    try:
        objects_freeze_before_fork()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
