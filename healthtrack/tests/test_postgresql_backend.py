"""The pool checks connections that sat idle, not every one it hands out
(healthtrack/postgresql/base.py)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from unittest import mock

import psycopg
import pytest
from django.db import connection
from psycopg_pool import ConnectionPool

from healthtrack.postgresql.base import _RETURNED_AT, POOL_CHECK_IDLE_SECONDS, check_connection_if_idle

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs DATABASE_URL pointing at PostgreSQL (CI sets it)"
)


@pytest.mark.parametrize(
    ("idle_seconds", "checked"),
    [
        (None, True),
        (0.01, False),
        (POOL_CHECK_IDLE_SECONDS - 0.1, False),
        (POOL_CHECK_IDLE_SECONDS + 0.1, True),
    ],
)
def test_only_connections_idle_long_enough_are_checked(idle_seconds, checked):
    pooled = SimpleNamespace()
    if idle_seconds is not None:
        setattr(pooled, _RETURNED_AT, time.monotonic() - idle_seconds)
    with mock.patch.object(ConnectionPool, "check_connection") as check:
        check_connection_if_idle(pooled)
    assert check.called is checked


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_the_pool_uses_the_idle_check_and_notes_when_a_connection_comes_back():
    connection.ensure_connection()
    assert connection.pool._check is check_connection_if_idle
    raw = connection.connection
    connection.close()  # back to the pool
    assert time.monotonic() - getattr(raw, _RETURNED_AT) < 1


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_connection_broken_while_idle_is_replaced_before_a_request_gets_it():
    connection.close()
    pool = connection.pool
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    raw = connection.connection
    connection.close()
    setattr(raw, _RETURNED_AT, time.monotonic() - POOL_CHECK_IDLE_SECONDS - 1)
    with psycopg.connect(**{**connection.get_connection_params(), "autocommit": True}) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    time.sleep(0.2)
    for _ in range(pool.get_stats()["pool_size"] + 1):  # whichever connection comes out
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            assert cursor.fetchone() == (1,)
        connection.close()


def test_the_query_counting_cursor_class_is_built_once_not_per_checkout():
    from django.db.backends.postgresql.base import Cursor

    from healthtrack.postgresql.base import DatabaseWrapper

    # Building parameters connects to nothing, so this runs whatever the test database.
    postgresql = DatabaseWrapper(
        {**connection.settings_dict, "ENGINE": "healthtrack.postgresql", "NAME": "ht", "OPTIONS": {}},
        alias="cursor-class-test",
    )
    first = postgresql.get_connection_params()["cursor_factory"]
    second = postgresql.get_connection_params()["cursor_factory"]
    assert first is second
    assert issubclass(first, Cursor) and first is not Cursor  # django-prometheus' counting class
    assert first.execute is not Cursor.execute


def test_the_preparing_cursor_asks_psycopg_to_prepare_only_its_own_statements():
    """psycopg prepares only while the connection's prepare_threshold is set, and while it
    is set counts every statement of the connection: set for this cursor's statements only."""
    from django.db.backends.postgresql.base import ServerBindingCursor

    from healthtrack.postgresql.base import _PreparingCursor

    seen = []

    def execute(self, query, params=None, *, prepare=None, binary=None):
        seen.append((query, prepare, self.connection.prepare_threshold))
        if query == "fails":
            raise psycopg.OperationalError("gone")
        return self

    raw = SimpleNamespace(prepare_threshold=None)
    cursor = _PreparingCursor.__new__(_PreparingCursor)  # no connection needed
    with (
        mock.patch.object(ServerBindingCursor, "execute", execute),
        mock.patch.object(_PreparingCursor, "connection", raw, create=True),
    ):
        cursor.execute("SELECT 1", [])
        with pytest.raises(psycopg.OperationalError):
            cursor.execute("fails")
    assert seen == [("SELECT 1", True, 0), ("fails", True, 0)]
    assert raw.prepare_threshold is None  # Django's client-side statements are not counted


@on_postgresql
@pytest.mark.django_db
def test_a_prepared_statement_is_prepared_once_and_nothing_else_is():
    from healthtrack.postgresql.base import prepared_cursor

    for value in range(3):
        with prepared_cursor(connection) as cursor:
            cursor.execute("SELECT %s::int + 1", [value])
            assert cursor.fetchone() == (value + 1,)
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s", ["client-side"])
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert prepared == ["SELECT $1::int + 1"]
    assert connection.connection.prepare_threshold is None
    assert len(connection.connection._prepared._counts) <= 1
