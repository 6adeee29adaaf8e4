"""Who is calling: the client address, trusting only the proxies we run."""

from __future__ import annotations

import contextlib
import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """The caller's IP address.

    ``REMOTE_ADDR`` unless ``TRUSTED_PROXY_COUNT`` = N > 0; then the N-th address from the
    right of ``X-Forwarded-For``: each trusted proxy appends the address it saw, so
    anything further left was written by the client and may be forged.
    """
    cached = getattr(request, "_healthtrack_client_ip", None)
    if cached is not None:
        return cached
    ip = request.META.get("REMOTE_ADDR") or "0.0.0.0"  # noqa: S104 - an address, not a bind
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= proxies:
            candidate = forwarded[-proxies]
            # A malformed entry keeps the address of the proxy that sent it.
            with contextlib.suppress(ValueError):
                ip = str(ipaddress.ip_address(candidate))
    request._healthtrack_client_ip = ip
    return ip
