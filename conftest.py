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


@pytest.fixture(autouse=True)
def _on_commit_callbacks_run_as_in_production(monkeypatch):
    """Each test runs inside a transaction of its own that never commits, so Django would
    hold every ``transaction.on_commit`` callback (the data-version bumps among them)
    until the end of the test and then drop it. Run them when production would: once no
    atomic block of the code under test is open any more (its transaction committed),
    and at once when none was open. Tests with ``transaction=True`` commit for real and
    Django runs the callbacks itself."""
    import logging

    from django.db import transaction
    from django.db.backends.base.base import BaseDatabaseWrapper

    def run_if_committed(connection) -> None:
        if not connection.run_on_commit or connection.needs_rollback:
            return
        if any(not block._from_testcase for block in connection.atomic_blocks):
            return  # the code's own transaction is still open
        callbacks, connection.run_on_commit = connection.run_on_commit, []
        for _, func, robust in callbacks:
            if not robust:
                func()
                continue
            try:
                func()
            except Exception:
                logging.getLogger("django.db.backends.base").exception("on_commit callback failed")

    original_on_commit = BaseDatabaseWrapper.on_commit
    original_exit = transaction.Atomic.__exit__

    def on_commit(self, func, robust=False):
        original_on_commit(self, func, robust)
        run_if_committed(self)

    def atomic_exit(self, exc_type, exc_value, traceback):
        result = original_exit(self, exc_type, exc_value, traceback)
        run_if_committed(transaction.get_connection(self.using))
        return result

    monkeypatch.setattr(BaseDatabaseWrapper, "on_commit", on_commit)
    monkeypatch.setattr(transaction.Atomic, "__exit__", atomic_exit)


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
