"""Caching that never takes the API down, and per-user data versions.

``ResilientRedisCache`` is django-redis behind a circuit breaker: when Redis fails or
hangs (socket timeouts ~100 ms), the failing call behaves as a cache miss, Redis is
skipped for ``CACHE_RETRY_AFTER_SECONDS``, a warning is logged at most once a minute,
and the next call after that tries Redis again, so caching resumes on its own.

For /metrics it counts hits and misses (django-prometheus' Redis backend, which it
extends), times every operation (``healthtrack_cache_operation_seconds``) and counts
operations answered without Redis (``healthtrack_cache_unavailable_total``).

Per-user data versions: every write to a user's health data bumps one counter, and
every cached read for that user is keyed by it, so invalidation is one ``INCR`` and
never a key scan.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import threading
import time
from typing import Any

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django.db import transaction
from django_prometheus.cache.backends.redis import RedisCache
from django_redis.exceptions import ConnectionInterrupted
from prometheus_client import Counter, Histogram
from redis.exceptions import NoScriptError, RedisError

logger = logging.getLogger("healthtrack.cache")

_CACHE_ERRORS = (ConnectionInterrupted, RedisError, OSError)
_WARNING_INTERVAL_SECONDS = 60.0

cache_operation_seconds = Histogram(
    "healthtrack_cache_operation_seconds",
    "Time of each Redis cache operation, failures included.",
    ["operation"],
    buckets=(0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, float("inf")),
)
cache_unavailable_total = Counter(
    "healthtrack_cache_unavailable",
    "Cache operations answered without Redis (it failed, or the breaker was open).",
    ["operation"],
)


class _Breaker:
    """Process-wide open/closed state for the Redis connection."""

    def __init__(self) -> None:
        self.open_until = 0.0
        self.last_warning = 0.0
        self.lock = threading.Lock()

    def allows(self) -> bool:
        return time.monotonic() >= self.open_until

    def trip(self, operation: str, error: Exception) -> None:
        now = time.monotonic()
        with self.lock:
            self.open_until = now + settings.CACHE_RETRY_AFTER_SECONDS
            should_warn = now - self.last_warning >= _WARNING_INTERVAL_SECONDS
            if should_warn:
                self.last_warning = now
        if should_warn:
            logger.warning(
                "Redis unavailable (%s failed: %s); serving from the database and "
                "failing rate limits open until it answers again.",
                operation,
                error.__class__.__name__,
            )

    def reset(self) -> None:
        self.open_until = 0.0


breaker = _Breaker()

# What each operation returns when Redis is unavailable: a miss, or "not stored".
_FALLBACKS: dict[str, Any] = {
    "add": False,
    "set": False,
    "set_many": [],
    "delete": False,
    "delete_many": 0,
    "get_many": {},
    "has_key": False,
    "incr": None,
    "decr": None,
    "touch": False,
    "ttl": None,
    "expire": False,
    "persist": False,
    "clear": False,
    "incr_version": None,
}


def _resilient(name: str):
    parent = getattr(RedisCache, name)

    timer = cache_operation_seconds.labels(operation=name)
    unavailable = cache_unavailable_total.labels(operation=name)

    def method(self, *args, **kwargs):
        if not breaker.allows():
            unavailable.inc()
            return _FALLBACKS[name]
        try:
            with timer.time():
                return parent(self, *args, **kwargs)
        except _CACHE_ERRORS as error:
            breaker.trip(name, error)
            unavailable.inc()
            return _FALLBACKS[name]

    method.__name__ = name
    method.__doc__ = parent.__doc__
    return method


@functools.cache
def _script_metrics(name: str):
    """The timer and the unavailable counter of a script, looked up once per name."""
    return cache_operation_seconds.labels(operation=name), cache_unavailable_total.labels(operation=name)


_get_timer = cache_operation_seconds.labels(operation="get")
_get_unavailable = cache_unavailable_total.labels(operation="get")


class ResilientRedisCache(RedisCache):
    """django-redis whose failures become misses instead of 500s."""

    def get(self, key, default=None, version=None, client=None):
        if not breaker.allows():
            _get_unavailable.inc()
            return default
        try:
            with _get_timer.time():
                return super().get(key, default=default, version=version, client=client)
        except _CACHE_ERRORS as error:
            breaker.trip("get", error)
            _get_unavailable.inc()
            return default

    for _name in _FALLBACKS:
        locals()[_name] = _resilient(_name)
    del _name

    def run_script(self, name: str, source: str, *, keys: list[str], args: list[Any]):
        """Run a Lua script in one round trip: ``keys`` are full keys (``make_key``).

        EVALSHA on a connection of this cache instance's own (Django gives each thread
        its own instance), sent and read directly: redis-py's command path (the pool's
        check-out and check-in, retries, argument checks) cost several times the round
        trip itself, and this script runs on every API request (the rate limits). A
        Redis that does not know the script (restarted, flushed) gets it with EVAL.
        Returns None when Redis is unavailable, like the other operations' misses.
        """
        timer, unavailable = _script_metrics(name)
        if not breaker.allows():
            unavailable.inc()
            return None
        shas = self.__dict__.setdefault("_script_shas", {})
        sha = shas.get(name)
        if sha is None:
            sha = shas[name] = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
        try:
            connection = self._script_connection()
            with timer.time():
                try:
                    connection.send_command("EVALSHA", sha, len(keys), *keys, *args)
                    return connection.read_response()
                except NoScriptError:
                    connection.send_command("EVAL", source, len(keys), *keys, *args)
                    return connection.read_response()
        except _CACHE_ERRORS as error:
            # A reply may still be on its way: the next call connects afresh.
            connection, _ = self.__dict__.get("_script_connection_of_pid", (None, None))
            if connection is not None:
                connection.disconnect()
            breaker.trip(name, error)
            unavailable.inc()
            return None

    def _script_connection(self):
        """This instance's connection for scripts (made again after a fork)."""
        connection, pid = self.__dict__.get("_script_connection_of_pid", (None, None))
        if connection is None or pid != os.getpid():
            pool = self.client.get_client(write=True).connection_pool
            connection = pool.make_connection()
            self.__dict__["_script_connection_of_pid"] = (connection, os.getpid())
        return connection

    def ping(self) -> bool:
        """Ask Redis directly, ignoring the breaker (health checks)."""
        try:
            ok = bool(self.client.get_client().ping())
        except _CACHE_ERRORS:
            return False
        if ok:
            breaker.reset()
        return ok


def cache_available() -> bool:
    """True when the cache answers right now (locmem always does)."""
    ping = getattr(cache, "ping", None)
    if ping is None:
        return True
    return ping()


# --- Per-user data versions -------------------------------------------------------


def _data_version_key(user_id: int) -> str:
    return f"dv:{user_id}"


def _fresh_version() -> int:
    # Time-based, not 1: if the counter is evicted or Redis restarts, the new version
    # can never equal one that old cached entries were stored under.
    return time.time_ns() // 1000


# Bumps that could not reach Redis; replayed as soon as it answers again, so entries
# cached before an outage are never served after a write made during it.
_pending_bumps: set[int] = set()
_pending_lock = threading.Lock()


def _replay_pending_bumps() -> None:
    with _pending_lock:
        pending = list(_pending_bumps)
        _pending_bumps.clear()
    for user_id in pending:
        _bump(user_id)


def user_data_version(user_id: int) -> int | None:
    """The current data version of a user, or None when the cache is unavailable."""
    if _pending_bumps:
        _replay_pending_bumps()
    key = _data_version_key(user_id)
    version = cache.get(key)
    if version is None:
        candidate = _fresh_version()
        if cache.add(key, candidate, timeout=None):
            return candidate
        version = cache.get(key)
    return version


def user_data_version_bump(*, user_id: int) -> None:
    """Invalidate every cached read of this user's data (one INCR), once the surrounding
    transaction commits (at once outside one).

    Once is enough: a read stores its value under the version it read before reading the
    data, so a value computed from the data as it was before the commit is stored under
    a version that the bump has left behind.
    """
    transaction.on_commit(lambda: _bump(user_id))


# KEYS[1]: a data version; ARGV[1]: a fresh version for a counter that does not exist.
_BUMP_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then
    return redis.call('INCR', KEYS[1])
end
redis.call('SET', KEYS[1], ARGV[1])
return tonumber(ARGV[1])
"""


def _bump(user_id: int) -> None:
    key = _data_version_key(user_id)
    redis_cache = caches[DEFAULT_CACHE_ALIAS]
    if isinstance(redis_cache, ResilientRedisCache):
        # One script in one round trip, whether the counter exists or not (django-redis'
        # incr sends its own script's text with every call, then a set when missing).
        bumped = redis_cache.run_script(
            "data-version-bump", _BUMP_SCRIPT, keys=[redis_cache.make_key(key)], args=[_fresh_version()]
        )
        if bumped is None:
            with _pending_lock:
                _pending_bumps.add(user_id)
        return
    try:
        bumped = cache.incr(key)
    except ValueError:  # no counter yet: any fresh value differs from older entries
        bumped = None
    # Only the Redis backend answers False for "not stored"; locmem answers None.
    if bumped is None and cache.set(key, _fresh_version(), timeout=None) is False:
        with _pending_lock:
            _pending_bumps.add(user_id)


def _entry_key(user_id: int, name: str, parts: tuple) -> str:
    suffix = ":".join(str(part) for part in parts)
    return f"{name}:{user_id}:{suffix}"


def cached_for_user_keys(user_id: int, name: str, parts: tuple) -> list[str]:
    """The cache keys ``cached_for_user`` reads for this entry: the version, the entry."""
    return [_data_version_key(user_id), _entry_key(user_id, name, parts)]


def cached_for_user_hit(found: dict[str, Any], user_id: int, name: str, parts: tuple) -> tuple[bool, Any]:
    """``(True, value)`` when the cache values ``found`` (read from ``cached_for_user_keys``)
    hold an entry stored under the user's current data version, else ``(False, None)``.
    Never a hit while data-version bumps wait to be replayed after a Redis outage."""
    if _pending_bumps:
        return False, None
    version_key, entry_key = cached_for_user_keys(user_id, name, parts)
    version, entry = found.get(version_key), found.get(entry_key)
    if version is not None and isinstance(entry, tuple) and len(entry) == 2 and entry[0] == version:
        return True, entry[1]
    return False, None


def cached_for_user(user_id: int, name: str, parts: tuple, timeout: int, compute, *, refresh: bool = False):
    """Return ``(value, cached)``: ``compute()`` cached under the user's data version.

    The entry keeps the version it was computed under next to the value and is served
    only while that is still the user's version, so a hit is one round trip (the
    version and the entry in one ``get_many``) and a bump leaves nothing stale to
    serve. A value computed while a write was committing carries the version read
    before it, so it is never served after the write. ``refresh=True`` skips the cached
    value, computes afresh and stores the new one. When the cache is unavailable the
    value is computed from the database every time.
    """
    if _pending_bumps:
        _replay_pending_bumps()
    version_key, entry_key = cached_for_user_keys(user_id, name, parts)
    version = None
    if not refresh:
        found = cache.get_many([version_key, entry_key])
        version = found.get(version_key)
        hit, value = cached_for_user_hit(found, user_id, name, parts)
        if hit:
            return value, True
    if version is None:  # a miss with the version in hand needs no second read
        version = user_data_version(user_id)
    if version is None:
        return compute(), False
    value = compute()
    cache.set(entry_key, (version, value), timeout=timeout)
    return value, False
