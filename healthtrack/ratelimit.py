"""Rate limits that hold across workers: django-ratelimit's atomic counters in the cache.

Every request under ``/api/`` is counted, in this order, against

* a burst limit per client IP: ``RATE_LIMIT_REQUESTS_PER_SECOND`` in a one-second window;
* a minute limit per client IP: ``RATE_LIMIT_REQUESTS_PER_MINUTE``;
* the same minute limit per user, when the request carries a validly signed access token.

Sign-in and sign-up add ``RATE_LIMIT_AUTH_ATTEMPTS_PER_IP`` attempts a minute per IP and
``RATE_LIMIT_AUTH_ATTEMPTS_PER_USERNAME`` per (IP, username), see ``auth_attempt_limit``.
A request refused by one limit is not counted by the limits after it.

Counters are django-ratelimit's: its keys and per-key windows, atomic ``INCR``s in the
cache. Unlike DRF's ``SimpleRateThrottle`` (read a history, change it, write it back)
nothing is lost when four workers count the same key at once, so a limit of 600 lets
exactly 600 through. Windows are fixed per key: their end is offset from the minute by
a hash of the key (django-ratelimit's jitter), and ``Retry-After`` is the number of
seconds until the current window ends.

On Redis the three API counters of a request are counted by one Lua script in one
round trip (``INCR``, ``EXPIRE`` on a new key, stop at the first limit exceeded), on
the same keys django-ratelimit's ``get_usage`` uses; counting them one ``get_usage``
at a time costs six round trips, the largest cost of a cached API request. Elsewhere
(the local-memory cache, sign-in attempts) ``get_usage`` counts.

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

import functools
import ipaddress
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse
from django_ratelimit import ALL

# Private helpers of the pinned django-ratelimit: the batched counting below must use
# exactly the keys and windows get_usage uses.
from django_ratelimit import core as ratelimit_core
from django_ratelimit.core import EXPIRATION_FUDGE, _get_window, _make_cache_key, get_usage
from rest_framework.exceptions import Throttled
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.settings import api_settings as jwt_settings

from healthtrack.cache import ResilientRedisCache
from healthtrack.errors import json_error
from healthtrack.net import client_ip
from users.authentication import PREFETCHED_CACHE_VALUES, bearer_token, validated_access_token
from users.selectors import user_auth_snapshot_keys

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
    return _counted_address(client_ip(request))


@functools.lru_cache(maxsize=4096)
def _counted_address(ip: str) -> str:
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
    for authentication, and limits also cover routes DRF never sees. Authentication
    reuses the decoded token (``validated_access_token`` decodes once per request).
    """
    raw_token = bearer_token(request)
    if raw_token is None:
        return None
    try:
        token = validated_access_token(request, raw_token)
    except InvalidToken:
        return None
    try:
        return int(token.get(jwt_settings.USER_ID_CLAIM))
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Limit:
    group: str
    value: str
    limit: int
    period: int

    def window(self) -> int:
        return _get_window(self.value, self.period)

    def cache_key(self, window: int) -> str:
        return _counter_key(self.group, window, self.limit, self.period, self.value)


@functools.lru_cache(maxsize=8192)
def _counter_key(group: str, window: int, limit: int, period: int, value: str) -> str:
    # django-ratelimit's key (an MD5 of the parts); the same few keys recur every request
    # of a window, so each is hashed once.
    return _make_cache_key(group, window, (limit, period), value, ALL)


# KEYS: the counters in order, then keys to read; ARGV: the number of counters, then the
# limit and lifetime of each. Counts each counter until one is over its limit (a
# request refused by one limit is not counted by the later ones), then reads the other
# keys. Returns the 1-based position of the limit exceeded (or 0), then the values read.
_COUNT_SCRIPT = """
local counters = tonumber(ARGV[1])
local result = {0}
for i = 1, counters do
    local count = redis.call('INCR', KEYS[i])
    if count == 1 then
        redis.call('EXPIRE', KEYS[i], tonumber(ARGV[2 * i + 1]))
    end
    if count > tonumber(ARGV[2 * i]) then
        result[1] = i
        break
    end
end
for i = counters + 1, #KEYS do
    result[#result + 1] = redis.call('GET', KEYS[i])
end
return result
"""


def rate_limits_wait(request: HttpRequest, limits: list[Limit], *, read: list[str] = ()) -> int | None:
    """Count one request against ``limits`` in order; seconds to wait if one is exceeded.

    On Redis this is one round trip, which also reads the cache keys ``read`` and
    leaves their values in ``request`` for authentication (``PREFETCHED_CACHE_VALUES``).
    """
    redis_cache = caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")]
    if not isinstance(redis_cache, ResilientRedisCache):
        for limit in limits:
            wait = rate_limit_hit(
                request, group=limit.group, value=limit.value, limit=limit.limit, period=limit.period
            )
            if wait is not None:
                return wait
        return None
    windows = [limit.window() for limit in limits]
    keys = [
        redis_cache.make_key(limit.cache_key(window)) for limit, window in zip(limits, windows, strict=True)
    ]
    args = [len(limits)] + [
        value for limit in limits for value in (limit.limit, limit.period + EXPIRATION_FUDGE)
    ]
    result = redis_cache.run_script(
        "ratelimit-count", _COUNT_SCRIPT, keys=keys + [redis_cache.make_key(key) for key in read], args=args
    )
    if result is None:
        fail_open_warning.emit(limits[0].group)
        return None
    exceeded, values = result[0], result[1:]
    if read and not exceeded:
        decode = redis_cache.client.decode
        setattr(
            request,
            PREFETCHED_CACHE_VALUES,
            {key: None if value is None else decode(value) for key, value in zip(read, values, strict=True)},
        )
    if not exceeded:
        return None
    # The window named by its last second ``w`` covers up to and including ``w``; the
    # clock is django-ratelimit's, the one its windows are cut by.
    return max(1, windows[exceeded - 1] - int(ratelimit_core.time.time()) + 1)


# Set on a request already counted (by healthtrack.cached_reads), so it is counted once.
COUNTED = "_healthtrack_rate_limit_counted"


def api_rate_limit_wait(request: HttpRequest, *, also_read: Sequence[str] = ()) -> int | None:
    """Count an API request against the IP and user limits; seconds to wait if over.

    With a signed token, the caller's authentication snapshot and the cache keys
    ``also_read`` are read in the same round trip (``PREFETCHED_CACHE_VALUES``).
    """
    setattr(request, COUNTED, True)
    ip = rate_limit_ip(request)
    per_minute = settings.RATE_LIMIT_REQUESTS_PER_MINUTE
    limits = [
        Limit("api:ip:second", ip, settings.RATE_LIMIT_REQUESTS_PER_SECOND, SECOND),
        Limit("api:ip:minute", ip, per_minute, MINUTE),
    ]
    read: list[str] = []
    if (user_id := bearer_user_id(request)) is not None:
        limits.append(Limit("api:user:minute", f"user:{user_id}", per_minute, MINUTE))
        read = [*user_auth_snapshot_keys(user_id), *also_read]
    return rate_limits_wait(request, limits, read=read)


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
        if (
            settings.RATE_LIMIT_ENABLED
            and request.path_info.startswith("/api/")
            and not hasattr(request, COUNTED)
        ):
            wait = api_rate_limit_wait(request)
            if wait is not None:
                return rate_limited_response(wait)
        return self.get_response(request)
