"""``/metrics``: Prometheus text format, only for addresses in ``METRICS_ALLOWED_IPS``.

Served by a middleware near the top of the stack rather than a URL route, so a scrape
works whatever ``Host`` header the scraper sends (Prometheus addresses pods by IP, which
``ALLOWED_HOSTS`` rarely lists) and is not redirected to HTTPS inside the cluster; the
allow-list is what guards it. Anyone else gets the same JSON 404 as any unknown path,
which does not even say the endpoint exists.

The numbers come from django-prometheus (requests, latencies and responses per view,
database queries and their duration, cache hits and misses) and from
``healthtrack.cache`` (Redis operation latency, operations skipped while Redis is down).
Under gunicorn they are summed over all workers (``healthtrack.serving``).
"""

from __future__ import annotations

import functools
import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django_prometheus.exports import ExportToDjangoView

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
