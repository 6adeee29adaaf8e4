"""System checks for settings a deployment must get right."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register


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
