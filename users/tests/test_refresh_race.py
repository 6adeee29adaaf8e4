"""Twenty parallel refreshes of one refresh token against a live server: exactly one wins."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken

from healthtrack.tests.live import gunicorn, needs_postgresql, request
from users.services import auth_tokens_issue
from users.tests.factories import UserFactory

PARALLEL = 20


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_twenty_parallel_refreshes_of_one_token_exactly_one_succeeds():
    user = UserFactory()
    tokens = auth_tokens_issue(user=user)
    # 4 processes x 5 threads: all twenty are served at the same time.
    with gunicorn(workers=4, threads=5) as server:
        # Open the database pools first, so the race is over the token, not the start-up.
        for _ in range(8):
            assert request(f"{server.url}/health").status == 200
        start = threading.Barrier(PARALLEL)

        def refresh(_n: int):
            start.wait()
            return request(
                f"{server.url}/api/v1/auth/token/refresh", method="POST", body={"refresh": tokens["refresh"]}
            )

        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            responses = list(pool.map(refresh, range(PARALLEL)))

        statuses = Counter(response.status for response in responses)
        assert statuses == {200: 1, 401: PARALLEL - 1}, (statuses, server.log()[-3000:])
        losers = [r.json() for r in responses if r.status == 401]
        assert {body["code"] for body in losers} == {"token_not_valid"}

        winner = next(r.json() for r in responses if r.status == 200)
        me = request(f"{server.url}/api/v1/users/me", headers={"Authorization": f"Bearer {winner['access']}"})
        assert me.status == 200
        again = request(
            f"{server.url}/api/v1/auth/token/refresh", method="POST", body={"refresh": winner["refresh"]}
        )
        assert again.status == 200
    assert BlacklistedToken.objects.filter(token__user=user).count() == 2
