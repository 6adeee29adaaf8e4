"""Rate limits that hold across workers: django-ratelimit's atomic counters in the cache.

Every request under ``/api/`` is counted, in this order, against

* a burst limit per client IP: ``RATE_LIMIT_REQUESTS_PER_SECOND`` in a one-second window;
* a minute limit per client IP: ``RATE_LIMIT_REQUESTS_PER_MINUTE``;
* the same minute limit per user, when the request carries a validly signed access token.

Sign-in and sign-up add ``RATE_LIMIT_AUTH_ATTEMPTS_PER_IP`` attempts a minute per IP and
``RATE_LIMIT_AUTH_ATTEMPTS_PER_USERNAME`` per (IP, username), see ``auth_attempt_limit``.
A request refused by one limit is not counted by the limits after it.

Counting is django-ratelimit's ``get_usage``: one ``ADD`` that creates the window's
counter, then an atomic ``INCR`` (django-redis runs it as one Lua script). Unlike DRF's
``SimpleRateThrottle`` (read a history, change it, write it back) nothing is lost when
four workers count the same key at once, so a limit of 600 lets exactly 600 through.
Windows are fixed per key: their end is offset from the minute by a hash of the key
(django-ratelimit's jitter), and ``Retry-After`` is the number of seconds until the
current window ends.

The client IP is ``healthtrack.net.client_ip`` (``TRUSTED_PROXY_COUNT``), so addresses
a client writes into ``X-Forwarded-For`` itself never change which counter it hits;
IPv6 clients are counted per /64, since one host usually holds a whole /64.

When the cache does not answer (Redis down: ``ResilientRedisCache`` turns the failure
into a miss), the limits fail open: the request is served, and a warning is logged at
most once a minute. On the embedded default (no ``REDIS_URL``) the counters live in the
local-memory cache, so each process counts for itself; that is by design for a single
developer process and is flagged by ``check --deploy`` (healthtrack.W003).
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django_ratelimit.core import get_usage
from rest_framework.exceptions import Throttled
from rest_framework_simplejwt.exceptions import TokenBackendError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.state import token_backend

from healthtrack.errors import json_error
from healthtrack.net import client_ip

logger = logging.getLogger("healthtrack.ratelimit")

MINUTE = 60
SECOND = 1
_WARNING_INTERVAL_SECONDS = 60.0


class _FailOpenWarning:
    """Log that limits are not enforced, at most once a minute per process."""

    def __init__(self) -> None:
        self.last = float("-inf")
        self.lock = threading.Lock()

    def emit(self, group: str) -> None:
        now = time.monotonic()
        with self.lock:
            if now - self.last < _WARNING_INTERVAL_SECONDS:
                return
            self.last = now
        logger.warning(
            "Rate limiting is failing open: the cache did not answer for %s; requests are "
            "served without being counted until it does.",
            group,
        )

    def reset(self) -> None:
        self.last = float("-inf")


fail_open_warning = _FailOpenWarning()


def rate_limit_ip(request: HttpRequest) -> str:
    """The address a client is counted under: its IP, or its /64 for IPv6."""
    ip = client_ip(request)
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False).network_address)
    return str(address)


def rate_limit_hit(request: HttpRequest, *, group: str, value: str, limit: int, period: int) -> int | None:
    """Count one request against ``group``/``value``.

    Returns the seconds until the window ends when the request is over ``limit``, else
    None (also when the cache is unavailable: the limit fails open).
    """
    usage = get_usage(
        request, group=group, key=lambda _group, _request: value, rate=(limit, period), increment=True
    )
    if usage is None:
        if getattr(settings, "RATELIMIT_ENABLE", True):
            fail_open_warning.emit(group)
        return None
    if not usage["should_limit"]:
        return None
    # The window named by its last second ``w`` covers up to and including ``w``; the
    # next one starts at ``w + 1``.
    return max(1, usage["time_left"] + 1)


def bearer_user_id(request: HttpRequest) -> int | None:
    """The ``user_id`` of a validly signed, unexpired access token, without any I/O.

    Checking the signature (an HMAC) before trusting the claim means nobody can spend
    another user's budget; a signed token of a revoked session still counts against its
    own user, who is refused by authentication right after. Doing this here rather than
    after DRF authentication means a flood is refused before any cache or database work
    for authentication, and limits also cover routes DRF never sees.
    """
    header = request.META.get("HTTP_AUTHORIZATION", "")
    parts = header.split()
    if len(parts) != 2 or parts[0] not in jwt_settings.AUTH_HEADER_TYPES:
        return None
    try:
        payload = token_backend.decode(parts[1], verify=True)
    except TokenBackendError:
        return None
    if payload.get(jwt_settings.TOKEN_TYPE_CLAIM) != "access":
        return None
    try:
        return int(payload.get(jwt_settings.USER_ID_CLAIM))
    except (TypeError, ValueError):
        return None


def api_rate_limit_wait(request: HttpRequest) -> int | None:
    """Count an API request against the IP and user limits; seconds to wait if over."""
    ip = rate_limit_ip(request)
    per_minute = settings.RATE_LIMIT_REQUESTS_PER_MINUTE
    wait = rate_limit_hit(
        request, group="api:ip:second", value=ip, limit=settings.RATE_LIMIT_REQUESTS_PER_SECOND, period=SECOND
    )
    if wait is None:
        wait = rate_limit_hit(request, group="api:ip:minute", value=ip, limit=per_minute, period=MINUTE)
    if wait is None and (user_id := bearer_user_id(request)) is not None:
        wait = rate_limit_hit(
            request, group="api:user:minute", value=f"user:{user_id}", limit=per_minute, period=MINUTE
        )
    return wait


def throttled_detail(wait: int) -> str:
    return str(Throttled(wait=wait).detail)


def rate_limited_response(wait: int) -> HttpResponse:
    """429 with the JSON error body and ``Retry-After``."""
    return json_error(429, throttled_detail(wait), "throttled", Retry_After=str(wait))


def auth_attempt_limit(request, *, action: str, username: object) -> None:
    """Count a sign-in or sign-up attempt; raise ``Throttled`` (429) when over a limit.

    ``RATE_LIMIT_AUTH_ATTEMPTS_PER_IP`` a minute per client, and
    ``RATE_LIMIT_AUTH_ATTEMPTS_PER_USERNAME`` a minute per (client, username): credential
    stuffing from one address runs out of attempts whether it tries many passwords for
    one account or one password for many. Usernames are compared case-insensitively, as
    sign-in does.
    """
    if not settings.RATE_LIMIT_ENABLED:
        return
    http_request = getattr(request, "_request", request)
    ip = rate_limit_ip(http_request)
    wait = rate_limit_hit(
        http_request,
        group=f"{action}:ip",
        value=ip,
        limit=settings.RATE_LIMIT_AUTH_ATTEMPTS_PER_IP,
        period=MINUTE,
    )
    if wait is None and isinstance(username, str) and username.strip():
        wait = rate_limit_hit(
            http_request,
            group=f"{action}:ip-username",
            value=f"{ip}|{username.strip().lower()}",
            limit=settings.RATE_LIMIT_AUTH_ATTEMPTS_PER_USERNAME,
            period=MINUTE,
        )
    if wait is not None:
        raise Throttled(wait=wait, detail=None)


class RateLimitMiddleware:
    """Apply the per-IP and per-user limits to every request under ``/api/``.

    Sits after ``CorsMiddleware`` so a 429 carries CORS headers a browser client can
    read, and CORS preflights (answered by that middleware) are not counted.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if settings.RATE_LIMIT_ENABLED and request.path.startswith("/api/"):
            wait = api_rate_limit_wait(request)
            if wait is not None:
                return rate_limited_response(wait)
        return self.get_response(request)
