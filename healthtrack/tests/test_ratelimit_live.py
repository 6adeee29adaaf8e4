"""The minute limit is exact across gunicorn workers (PostgreSQL + Redis, as deployed)."""

from __future__ import annotations

import time
import types
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from unittest import mock

import pytest
from django_ratelimit import core as ratelimit_core

from healthtrack.tests.live import gunicorn, needs_postgresql_and_redis, request
from users.services import auth_tokens_issue
from users.tests.factories import UserFactory

REQUESTS = 700
CONCURRENCY = 64
LIMIT = 600
# The run takes a few seconds; both counters it spends must stay in one window throughout.
MIN_WINDOW_LEFT = 45


def window_seconds_left(value: str) -> int:
    """Seconds until django-ratelimit's one-minute window for ``value`` ends."""
    now = time.time()
    with mock.patch.object(ratelimit_core, "time", types.SimpleNamespace(time=lambda: now)):
        return ratelimit_core._get_window(value, 60) - int(now)


@needs_postgresql_and_redis
@pytest.mark.django_db(transaction=True)
def test_700_requests_from_one_ip_let_exactly_600_through_4_workers():
    env = {
        "RATE_LIMIT_ENABLED": "true",
        "RATE_LIMIT_REQUESTS_PER_MINUTE": str(LIMIT),
        "RATE_LIMIT_REQUESTS_PER_SECOND": "100000",  # this test is about the minute limit
        "TRUSTED_PROXY_COUNT": "1",
    }
    with gunicorn(workers=4, env=env) as server:
        # Windows end at a per-key offset in the minute (django-ratelimit's jitter). Pick a
        # user and a client address whose windows both have time left for the whole run,
        # so the count cannot be split by a window boundary.
        user = UserFactory()
        while window_seconds_left(f"user:{user.pk}") < MIN_WINDOW_LEFT:
            user = UserFactory()
        client_ip = next(
            f"10.{a}.{b}.7"
            for a in range(256)
            for b in range(256)
            if window_seconds_left(f"10.{a}.{b}.7") >= MIN_WINDOW_LEFT
        )
        access = auth_tokens_issue(user=user)["access"]

        def one(_n: int) -> int:
            # Behind one trusted proxy the client is the right-most address; everything
            # to its left is written by the client and rotates freely without escaping.
            headers = {
                "Authorization": f"Bearer {access}",
                "X-Forwarded-For": f"198.18.{uuid.uuid4().int % 256}.{_n % 256}, {client_ip}",
            }
            return request(f"{server.url}/api/v1/users/me", headers=headers).status

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
            statuses = Counter(pool.map(one, range(REQUESTS)))
        elapsed = time.monotonic() - started

    assert elapsed < MIN_WINDOW_LEFT, f"the run took {elapsed:.1f} s, longer than the window it had"
    assert statuses == {200: LIMIT, 429: REQUESTS - LIMIT}, (statuses, server.log()[-3000:])
