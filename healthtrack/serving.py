"""What gunicorn.conf.py uses: JSON logs for gunicorn itself, Prometheus across workers,
and the API's JSON error body for the requests gunicorn refuses itself.

Imported by the gunicorn master before (and independently of) Django, so nothing here
imports Django.

Prometheus and several workers: each worker is its own process with its own counters,
and a scrape reaches one of them. prometheus_client's multiprocess mode keeps every
process's values in small mmap files under ``PROMETHEUS_MULTIPROC_DIR`` and sums them
when /metrics is served. The directory is emptied when gunicorn starts (old files would
add up), and when a worker exits, its counters and histograms are folded into
``*_archive.db`` and its files removed: totals never go backwards, and recycling workers
(``max_requests``) does not grow the number of files a scrape has to read.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import glob
import logging
import os

import orjson
from gunicorn import glogging

from healthtrack.logging import REQUEST_LOG_ENVIRON_KEY, JsonFormatter

ARCHIVE_NAME = "archive"
# glibc's mallopt parameter number (malloc.h).
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 1 << 20
_ARCHIVED_KINDS = ("counter", "histogram")
LARGE_REQUEST_BYTES = 64 * 1024


@functools.cache
def _libc_function(name: str, argtypes: tuple):
    """A C library function as ctypes sees it, or None (no libc found, not glibc)."""
    library = ctypes.util.find_library("c")
    if not library:
        return None
    try:
        function = getattr(ctypes.CDLL(library), name)
    except (OSError, AttributeError):
        return None
    function.argtypes = argtypes
    function.restype = ctypes.c_int
    return function


def malloc_return_large_blocks(threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Make glibc serve every allocation of ``threshold`` bytes or more with its own mmap,
    so freeing it returns the memory to the system. Called in the gunicorn master before
    the fork; the workers inherit it. True when it took effect.

    Why: glibc raises its mmap threshold to the size of the largest block freed so far
    (up to 32 MiB). A sign-in's Argon2 hash allocates 19 MiB; after the first one, later
    hashes come from the heap of the thread that ran them and stay resident when freed.
    Measured: three threads hashing three times each keep 58 MB; with a fixed 1 MiB
    threshold they keep under 2 MB, and a benchmark's workers end at ~100 MB instead of
    ~145 MB. Setting ``MALLOC_MMAP_THRESHOLD_`` in the environment, or another C library
    (musl, macOS), leaves the allocator as it is.
    """
    # Looked up here, in the master, so no worker runs ldconfig on its first large request.
    _libc_function("malloc_trim", (ctypes.c_size_t,))
    if os.environ.get("MALLOC_MMAP_THRESHOLD_"):
        return False
    mallopt = _libc_function("mallopt", (ctypes.c_int, ctypes.c_int))
    return mallopt is not None and mallopt(_M_MMAP_THRESHOLD, threshold) == 1


def memory_release_after_large_request(environ: dict) -> bool:
    """After a request whose body was large (a bulk upload, an import), free what it left
    and hand the free pages of glibc's heaps back to the system (gunicorn's
    ``post_request`` hook). Only after such requests; True when it ran.

    Why a full collection: such a request allocates enough objects to trigger the
    collector several times while it runs, so its own objects (the request, its body, the
    parsed samples, DRF's request and view, which refer to each other in cycles) are
    promoted to the oldest generation and die only at the next full collection, minutes
    later. Until then they pin Python's 1 MiB arenas, which go back to the system only when
    entirely empty, and every such request takes new ones. Measured with ``make bench``'s
    bulk run: workers ended at 103-152 MB resident without it, 89-93 MB with it. With the
    master's objects frozen (``objects_freeze_before_fork``) the collection walks only the
    worker's own objects: ~3 ms, against ~65 ms for the whole heap. ``malloc_trim(0)``
    alone had taken the bulk workers from 155-156 to 143-145 MB.
    """
    try:
        size = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    if size < LARGE_REQUEST_BYTES:
        return False
    gc.collect()
    malloc_trim = _libc_function("malloc_trim", (ctypes.c_size_t,))
    if malloc_trim is not None:
        malloc_trim(0)
    return True


def objects_freeze_before_fork() -> None:
    """Move every object of the gunicorn master (the preloaded app) out of the collector's
    reach, right before a worker is forked (gunicorn's ``pre_fork`` hook), as the ``gc``
    documentation advises for forking servers: the workers' collections then never walk,
    nor write to, the tens of megabytes they share with the master, and a full collection
    in a worker costs milliseconds."""
    gc.freeze()


def log_format_is_json() -> bool:
    return os.environ.get("LOG_FORMAT", "text").strip().lower() == "json"


class GunicornLogger(glogging.Logger):
    """gunicorn's logger; with LOG_FORMAT=json its error log and access log are JSON lines.

    The access line carries method, path (never the query string, which may hold
    tokens), status, duration_ms, bytes, request_id (the ``X-Request-ID`` our middleware
    sets on every response), remote address and user agent, and what the app left for it
    in the environ (``REQUEST_LOG_ENVIRON_KEY``): the user id, the client address as the
    app sees it behind proxies, and the level (ERROR for 5xx, DEBUG for probes). It is
    then the request's one line; the app writes none of its own.
    """

    def setup(self, cfg) -> None:
        super().setup(cfg)
        if os.environ.get("LOG_LEVEL", "").strip().upper() == "DEBUG":
            # The app's DEBUG lines (successful probes and scrapes) show with LOG_LEVEL=DEBUG,
            # as when the app wrote them; gunicorn keeps its access log at INFO otherwise.
            self.access_log.setLevel(logging.DEBUG)
        self.json_lines = log_format_is_json()
        if self.json_lines:
            formatter = JsonFormatter()
            for log in (self.error_log, self.access_log):
                for handler in log.handlers:
                    handler.setFormatter(formatter)
        else:
            # Time and level, as on the app's text lines: this is the request's one line.
            text = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
            for handler in self.access_log.handlers:
                handler.setFormatter(text)

    def access(self, resp, req, environ, request_time) -> None:
        if not self.access_log_enabled:
            return
        # The app's part of the line (healthtrack.middleware.RequestLogMiddleware); absent
        # for a request gunicorn answered itself.
        app_fields = environ.get(REQUEST_LOG_ENVIRON_KEY) or {}
        level = app_fields.get("level", logging.INFO)
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        try:
            status = int(status)
        except (TypeError, ValueError):
            status = 0
        if status >= 500:  # also when gunicorn answered the error itself
            level = max(level, logging.ERROR)
        if not self.json_lines:
            atoms = self.atoms(resp, req, environ, request_time)
            atoms["{healthtrack.user_id}e"] = app_fields.get("user_id") or "-"
            try:
                self.access_log.log(level, self.cfg.access_log_format, self.atoms_wrapper_class(atoms))
            except Exception:
                self.exception("Could not write the access log line")
            return
        request_id = next((value for name, value in resp.headers if name.lower() == "x-request-id"), None)
        duration_ms = round(request_time.total_seconds() * 1000, 1)
        method, path = environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
        try:
            self.access_log.log(
                level,
                "%s %s %s",
                method,
                path,
                status,
                extra={
                    "request_id": request_id,
                    "user_id": app_fields.get("user_id"),
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_ms": duration_ms,
                    "bytes": getattr(resp, "sent", None),
                    "ip": app_fields.get("ip"),
                    "remote_addr": environ.get("REMOTE_ADDR"),
                    "user_agent": environ.get("HTTP_USER_AGENT"),
                },
            )
        except Exception:
            self.exception("Could not write the access log line")


def multiprocess_dir_prepare(directory: str) -> None:
    """Create the metrics directory and delete files left by an earlier run."""
    os.makedirs(directory, exist_ok=True)
    for path in glob.glob(os.path.join(directory, "*.db")):
        os.remove(path)


def worker_metrics_archive(pid: int, directory: str) -> None:
    """Fold the counters and histograms of exited worker ``pid`` into the archive files.

    Runs in the gunicorn master (``child_exit``), one worker at a time.
    """
    from prometheus_client import multiprocess
    from prometheus_client.mmap_dict import MmapedDict

    multiprocess.mark_process_dead(pid, directory)  # live gauges of the worker
    for kind in _ARCHIVED_KINDS:
        worker_file = os.path.join(directory, f"{kind}_{pid}.db")
        if not os.path.exists(worker_file):
            continue
        values = list(MmapedDict.read_all_values_from_file(worker_file))
        archive = MmapedDict(os.path.join(directory, f"{kind}_{ARCHIVE_NAME}.db"))
        try:
            # The values are in memory: removing the file and adding them to the archive
            # takes microseconds, the only moment a scrape could see them missing.
            os.remove(worker_file)
            for key, value, timestamp, _position in values:
                current, _ = archive.read_value(key)
                archive.write_value(key, current + value, timestamp)
        finally:
            archive.close()
    logging.getLogger("healthtrack.serving").debug("Archived Prometheus metrics of worker %s", pid)


# --- gunicorn's own error pages --------------------------------------------------------
#
# A request gunicorn cannot parse never reaches Django: a request line over
# ``limit_request_line`` (4094 bytes: a long query string) is a 414, a malformed header a
# 400, too many headers a 431. gunicorn writes those as small HTML pages; clients of this
# API expect ``{"detail", "code"}`` JSON for every error (DESIGN.md), and the OpenAPI
# schema documents them so. ``use_json_error_pages`` (called from ``gunicorn.conf.py`` in
# each worker) swaps gunicorn's page writer for one that writes that JSON, with the same
# security headers as every other response.

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
