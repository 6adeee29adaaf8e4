"""Fixtures every app's tests use, and the CI rule that no test may be skipped."""

from __future__ import annotations

import os

import pytest
from rest_framework.test import APIClient

# --- CI: a skipped test is a failed run -------------------------------------------

_skipped: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if _skipped and os.environ.get("FAIL_ON_SKIP", "").lower() in ("1", "true", "yes"):
        session.exitstatus = 1
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:
            tr.write_line(
                f"FAIL_ON_SKIP: {len(_skipped)} test(s) skipped, which CI does not allow:", red=True
            )
            for nodeid in _skipped:
                tr.write_line(f"  {nodeid}", red=True)


# --- Common fixtures ------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fast_hashing_and_clean_cache(settings):
    """Cheap password hashing (Argon2 has its own test), an empty cache per test, rate
    limits off (tests that exercise them switch them on: healthtrack/tests/test_ratelimit.py),
    and audit rows written on the request's own connection, inside the test's transaction
    (the group-commit writer has its own tests: healthtrack/tests/test_audit_writer.py)."""
    from django.core.cache import cache

    from healthtrack.cache import breaker

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.RATE_LIMIT_ENABLED = False
    settings.AUDIT_GROUP_COMMIT = False
    breaker.reset()
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def user(db):
    from users.tests.factories import UserFactory

    return UserFactory()


@pytest.fixture
def other_user(db):
    from users.tests.factories import UserFactory

    return UserFactory()


def client_for(user) -> APIClient:
    """An API client signed in as ``user`` with a real token pair."""
    from users.services import auth_tokens_issue

    client = APIClient()
    tokens = auth_tokens_issue(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    client.tokens = tokens
    return client


@pytest.fixture
def auth_client(user) -> APIClient:
    return client_for(user)


@pytest.fixture
def other_client(other_user) -> APIClient:
    return client_for(other_user)


@pytest.fixture
def make_client(db):
    """``make_client(user)`` → an API client signed in as that user."""
    return client_for
