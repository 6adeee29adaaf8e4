"""``/metrics``: Prometheus text format, only for addresses in ``METRICS_ALLOWED_IPS``.

Served by a middleware near the top of the stack rather than a URL route, so a scrape
works whatever ``Host`` header the scraper sends (Prometheus addresses pods by IP, which
``ALLOWED_HOSTS`` rarely lists) and is not redirected to HTTPS inside the cluster; the
allow-list is what guards it. Anyone else gets the same JSON 404 as any unknown path,
which does not even say the endpoint exists.

The numbers: requests, responses by status and latency per view
(``RequestMetricsMiddleware``, with django-prometheus' metric names); database queries
and their duration, cache hits and misses (django-prometheus' backends); Redis
operation latency and operations skipped while Redis is down (``healthtrack.cache``).
Under gunicorn they are summed over all workers (``healthtrack.serving``).
"""

from __future__ import annotations

import functools
import ipaddress
import time

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django_prometheus.exports import ExportToDjangoView
from prometheus_client import Counter, Histogram

from healthtrack.errors import json_error
from healthtrack.net import client_ip

METRICS_PATHS = frozenset({"/metrics", "/metrics/"})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=8)
def parse_allowed_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """Addresses and CIDR ranges; ValueError names an entry that is neither."""
    networks = []
    for entry in entries:
        entry = entry.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"METRICS_ALLOWED_IPS: '{entry}' is not an IP address or CIDR range") from None
    return tuple(networks)


def metrics_allowed(request: HttpRequest) -> bool:
    """Is the caller (``healthtrack.net.client_ip``) in ``METRICS_ALLOWED_IPS``?"""
    try:
        address = ipaddress.ip_address(client_ip(request))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:10.0.0.5 is 10.0.0.5
    networks = parse_allowed_networks(tuple(settings.METRICS_ALLOWED_IPS))
    return any(address.version == network.version and address in network for network in networks)


class MetricsEndpointMiddleware:
    """Answer ``GET /metrics`` for allowed addresses; a JSON 404 for everyone else."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info not in METRICS_PATHS:
            return self.get_response(request)
        if not metrics_allowed(request):
            return json_error(404, "Not found.", "not_found")
        if request.method not in ("GET", "HEAD"):
            detail = f'Method "{request.method}" not allowed.'
            return json_error(405, detail, "method_not_allowed", Allow="GET, HEAD")
        response = ExportToDjangoView(request)
        response["Cache-Control"] = "no-store"
        return response


UNNAMED_VIEW = "<unnamed view>"

requests_by_view = Counter(
    "django_http_requests_total_by_view_transport_method",
    "Requests by view, transport and method.",
    ["view", "transport", "method"],
)
responses_by_status = Counter(
    "django_http_responses_total_by_status_view_method",
    "Responses by status, view and method.",
    ["status", "view", "method"],
)
latency_by_view = Histogram(
    "django_http_requests_latency_seconds_by_view_method",
    "Request processing time by view and method, middleware included.",
    ["view", "method"],
    buckets=settings.PROMETHEUS_LATENCY_BUCKETS,
)
exceptions_by_view = Counter(
    "django_http_exceptions_total_by_view", "Unhandled exceptions by view.", ["view"]
)


class RequestMetricsMiddleware:
    """Request count, status and latency per view: three metric updates a request.

    django-prometheus' before/after middlewares update about thirteen (several of them
    histograms) on every request, a measurable share of a cached API request's CPU under
    gunicorn's multiprocess metric files; these three are the ones the dashboards use.
    Outermost, so the latency includes every other middleware.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        try:
            response = self.get_response(request)
        except Exception:
            exceptions_by_view.labels(_view_name(request)).inc()
            raise
        view = _view_name(request)
        method = request.method or ""
        requests_by_view.labels(view, "https" if request.is_secure() else "http", method).inc()
        responses_by_status.labels(str(response.status_code), view, method).inc()
        latency_by_view.labels(view, method).observe(time.perf_counter() - started)
        return response


def _view_name(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    return (match.view_name if match is not None else "") or UNNAMED_VIEW
