"""gunicorn settings, all overridable from the environment (GUNICORN_*)."""

import multiprocessing
import os


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# CPU-bound Python: about two processes per core, each with a few threads so a
# request waiting on PostgreSQL or Redis does not hold a whole process.
workers = _int("GUNICORN_WORKERS", max(2, multiprocessing.cpu_count() * 2))
threads = _int("GUNICORN_THREADS", 2)
worker_class = "gthread" if threads > 1 else "sync"
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Recycle workers now and then so slow leaks cannot grow; jitter avoids all at once.
max_requests = _int("GUNICORN_MAX_REQUESTS", 5000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 500)
preload_app = os.environ.get("GUNICORN_PRELOAD", "true").lower() == "true"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
if os.environ.get("LOG_FORMAT", "text") == "json":
    # One JSON object per request: method, path, status, latency (ms), request id.
    access_log_format = (
        '{"time":"%(t)s","logger":"gunicorn.access","level":"INFO","method":"%(m)s",'
        '"path":"%(U)s","status":%(s)s,"duration_ms":%(M)s,"bytes":"%(B)s",'
        '"request_id":"%({x-request-id}o)s","remote_addr":"%(h)s","user_agent":"%(a)s"}'
    )
else:
    access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms rid=%({x-request-id}o)s'


def post_worker_init(worker):
    # Requests gunicorn refuses before Django sees them (a request line over 4094 bytes,
    # malformed headers) answer the API's JSON error body, not gunicorn's HTML page.
    from healthtrack.serving import use_json_error_pages

    use_json_error_pages()
