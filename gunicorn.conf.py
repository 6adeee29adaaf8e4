"""gunicorn settings, all overridable from the environment (GUNICORN_*).

The Dockerfile, `make serve` and `make run` start gunicorn with this file;
docs/operations.md explains each choice.
"""

import math
import os
import shutil
import tempfile


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def available_cpus() -> int:
    """CPUs this process may really use: a container's CPU quota (cgroup v2 or v1), else
    the CPUs it is allowed to run on. ``os.cpu_count()`` would count the whole host."""
    limits = []
    try:
        with open("/sys/fs/cgroup/cpu.max") as quota_file:  # cgroup v2
            quota, period = quota_file.read().split()[:2]
        if quota != "max":
            limits.append(int(quota) / int(period))
    except (OSError, ValueError):
        try:  # cgroup v1
            with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as quota_file:
                quota_us = int(quota_file.read())
            with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as period_file:
                period_us = int(period_file.read())
            if quota_us > 0:
                limits.append(quota_us / period_us)
        except (OSError, ValueError):
            pass
    try:
        limits.append(len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        limits.append(os.cpu_count() or 1)
    return max(1, math.ceil(min(limits)))


CPUS = available_cpus()

bind = os.environ.get("GUNICORN_BIND") or "0.0.0.0:8000"
proc_name = "healthtrack"
# CPU-bound Python: two processes per core, each with a few threads so a request waiting
# on PostgreSQL or Redis does not hold a whole process.
workers = _int("GUNICORN_WORKERS", max(2, CPUS * 2))
threads = _int("GUNICORN_THREADS", 2)
worker_class = "gthread" if threads > 1 else "sync"
# gunicorn's C request parser (the gunicorn-h1c package): the bench's bare Django view
# costs about a tenth less CPU per request than with the pure-Python parser. "fast" refuses
# to start without it rather than fall back silently; GUNICORN_HTTP_PARSER=python is the
# way back.
http_parser = os.environ.get("GUNICORN_HTTP_PARSER") or "fast"
if http_parser == "fast":
    # gunicorn would otherwise find it missing only per request, failing every one of them.
    import gunicorn_h1c  # noqa: F401
# A request running longer than this is killed and its worker replaced.
timeout = _int("GUNICORN_TIMEOUT", 30)
# SIGTERM: stop accepting, let requests in flight finish for up to this long, then exit.
# Keep it below the orchestrator's grace period (Kubernetes: terminationGracePeriodSeconds).
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 25)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Recycle workers now and then so slow leaks cannot grow; jitter avoids all at once.
max_requests = _int("GUNICORN_MAX_REQUESTS", 5000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 500)
# Import the app once in the master: faster worker start, memory shared copy-on-write.
# Database and Redis connections are opened lazily, after the fork.
preload_app = (os.environ.get("GUNICORN_PRELOAD") or "true").lower() == "true"
# Workers' heartbeat files in memory, not on a container's overlay disk.
_SHARED_MEMORY = "/dev/shm"  # noqa: S108 - gunicorn creates its own unique files there
worker_tmp_dir = _SHARED_MEMORY if os.path.isdir(_SHARED_MEMORY) else None
# gunicorn's runtime control socket (gunicornc) only when asked for, at a path you choose:
# by default it lands in $HOME/.gunicorn, which a read-only container may not have and
# which two servers on one host would share.
control_socket_disable = not os.environ.get("GUNICORN_CONTROL_SOCKET")
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
# Proxies whose X-Forwarded-Proto/For gunicorn believes (the app's own client-IP logic
# uses TRUSTED_PROXY_COUNT).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS") or "127.0.0.1"

# --- Logs: LOG_FORMAT=json makes gunicorn's own lines JSON too (healthtrack.serving) ---
logger_class = "healthtrack.serving.GunicornLogger"
# The access line is the request's one log line: the app leaves its user id, client
# address and level for it instead of writing a line of its own (set before the app is
# imported). GUNICORN_ACCESS_LOG= (empty) turns the access log off, and the app writes
# its own line per request (logger healthtrack.request).
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
os.environ["REQUEST_LOG_BY_SERVER"] = "true" if accesslog else "false"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL") or "info"
# Text access log (LOG_FORMAT=text). The path is %(U)s, never the query string, which
# may carry tokens; JSON lines are written by GunicornLogger.access.
access_log_format = (
    '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms rid=%({x-request-id}o)s user=%({healthtrack.user_id}e)s'
)

# --- Prometheus across workers (healthtrack.serving) ------------------------------------
# Set before the app (and prometheus_client) is imported, which fixes the value class.
_METRICS_DIR_CREATED = None
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _METRICS_DIR_CREATED = tempfile.mkdtemp(prefix="healthtrack-prometheus-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _METRICS_DIR_CREATED


def on_starting(server):
    from healthtrack.serving import malloc_return_large_blocks, multiprocess_dir_prepare

    # In the master, before any worker is forked (they inherit it): freed Argon2 buffers
    # (19 MiB per sign-in) go back to the system instead of staying in a thread's heap.
    malloc_return_large_blocks()

    multiprocess_dir_prepare(os.environ["PROMETHEUS_MULTIPROC_DIR"])


def child_exit(server, worker):
    from healthtrack.serving import worker_metrics_archive

    worker_metrics_archive(worker.pid, os.environ["PROMETHEUS_MULTIPROC_DIR"])


def on_exit(server):
    if _METRICS_DIR_CREATED:
        shutil.rmtree(_METRICS_DIR_CREATED, ignore_errors=True)


def pre_fork(server, worker):
    from healthtrack.serving import objects_freeze_before_fork

    objects_freeze_before_fork()


def post_request(worker, req, environ, resp):
    from healthtrack.serving import memory_release_after_large_request

    memory_release_after_large_request(environ)


def post_worker_init(worker):
    # Requests gunicorn refuses before Django sees them (a request line over 4094 bytes,
    # malformed headers) answer the API's JSON error body, not gunicorn's HTML page.
    from healthtrack.serving import use_json_error_pages

    use_json_error_pages()
