"""System checks for settings a deployment must get right."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.security, deploy=True)
def check_secrets(app_configs, **kwargs):
    problems = []
    if settings.JWT_SIGNING_KEY_DERIVED:
        problems.append(
            Warning(
                "JWT_SIGNING_KEY is not set; tokens are signed with a key derived from SECRET_KEY.",
                hint="Set JWT_SIGNING_KEY to a random value of at least 32 bytes.",
                id="healthtrack.W001",
            )
        )
    if len(settings.FIELD_ENCRYPTION_KEY) < 16:
        problems.append(
            Warning(
                "FIELD_ENCRYPTION_KEY is shorter than 16 characters.",
                hint="Use a long random value; it salts the keys that encrypt PHI at rest.",
                id="healthtrack.W002",
            )
        )
    if not settings.REDIS_URL:
        problems.append(
            Warning(
                "REDIS_URL is not set: caching and rate limits are per process.",
                hint="Production runs several workers; point REDIS_URL at Redis.",
                id="healthtrack.W003",
            )
        )
    return problems


@register(Tags.caches)
def check_rate_limit_store(app_configs, **kwargs):
    """Rate-limit counters need a cache with atomic increments shared by all workers.

    Stands in for django-ratelimit's own cache checks (silenced in settings), which
    compare exact class paths and so reject ``ResilientRedisCache``, a RedisCache subclass.
    """
    from django.core.cache.backends.locmem import LocMemCache
    from django.utils.module_loading import import_string
    from django_redis.cache import RedisCache

    alias = getattr(settings, "RATELIMIT_USE_CACHE", "default")
    config = settings.CACHES.get(alias)
    if config is None:
        return [
            Error(
                f"RATELIMIT_USE_CACHE names the cache {alias!r}, which CACHES does not define.",
                id="healthtrack.E001",
            )
        ]
    backend = import_string(config["BACKEND"])
    if issubclass(backend, RedisCache):
        return []
    if issubclass(backend, LocMemCache) and not settings.REDIS_URL:
        return []  # the embedded default: per-process counters by design (W003 under --deploy)
    return [
        Error(
            f"Rate limits cannot count reliably in {config['BACKEND']}.",
            hint="Use Redis (REDIS_URL): its INCR is atomic and shared by every worker.",
            id="healthtrack.E001",
        )
    ]
