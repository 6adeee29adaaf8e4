"""What an authenticated API request costs in cache round trips (Redis only)."""

from unittest import mock

import pytest
from django.core.cache import caches

from healthtrack.cache import ResilientRedisCache

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        not isinstance(caches["default"], ResilientRedisCache), reason="needs REDIS_URL (CI sets it)"
    ),
]


def test_rate_limits_and_the_auth_snapshot_share_one_round_trip(settings, auth_client):
    settings.RATE_LIMIT_ENABLED = True
    assert auth_client.get("/api/v1/users/me").status_code == 200  # builds the snapshot
    cache = caches["default"]
    with (
        mock.patch.object(ResilientRedisCache, "get_many", wraps=cache.get_many) as get_many,
        mock.patch.object(
            ResilientRedisCache, "run_script", autospec=True, side_effect=ResilientRedisCache.run_script
        ) as script,
    ):
        response = auth_client.get("/api/v1/users/me")
    assert response.status_code == 200
    assert script.call_count == 1  # counters + snapshot in one script
    assert get_many.call_count == 0  # authentication used the prefetched snapshot


def test_a_revoked_session_is_refused_even_with_a_prefetched_snapshot(settings, auth_client):
    settings.RATE_LIMIT_ENABLED = True
    assert auth_client.get("/api/v1/users/me").status_code == 200
    auth_client.post("/api/v1/auth/logout", {"refresh": auth_client.tokens["refresh"]}, format="json")
    assert auth_client.get("/api/v1/users/me").status_code == 401
