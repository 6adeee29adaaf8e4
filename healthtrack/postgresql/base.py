"""PostgreSQL as HealthTrack runs it: django-prometheus' backend (query metrics for
/metrics) on Django's psycopg pool, whose health check costs a round trip only when it
can find something.

Django has the pool check every connection it hands out (an empty query): on a busy
node that is one more round trip per request, for a connection that was serving another
request a millisecond earlier. Here a connection is checked only when it has been back
in the pool for ``POOL_CHECK_IDLE_SECONDS`` or more. What the check is for still holds:
connections that sat idle while the database restarted are replaced before a request
gets them. One that breaks within a second of its last use fails its request, as it
would have failed had it broken during the request.
"""

from __future__ import annotations

import time

from django.db.backends.postgresql.base import ServerBindingCursor
from django.db.backends.utils import CursorWrapper
from django_prometheus.db.backends.postgresql import base
from django_prometheus.db.common import ExportingCursorWrapper
from psycopg_pool import ConnectionPool

POOL_CHECK_IDLE_SECONDS = 1.0
_RETURNED_AT = "_healthtrack_returned_at"
_cursor_wrappers: dict[tuple[type, str, str], type] = {}


def _counting_cursor_class(cursor_class: type, alias: str, vendor: str) -> type:
    """django-prometheus' counting subclass of ``cursor_class``, built once."""
    key = (cursor_class, alias, vendor)
    wrapper = _cursor_wrappers.get(key)
    if wrapper is None:
        wrapper = _cursor_wrappers[key] = ExportingCursorWrapper(*key)
    return wrapper


class _PreparingCursor(ServerBindingCursor):
    """Prepares every statement it runs (once per connection; psycopg names and keeps
    them). psycopg prepares only while the connection's ``prepare_threshold`` is set,
    and while it is set it also counts every other statement of the connection (an LRU
    of their texts: Django's client-side statements carry their values, a bulk insert's
    hundreds of kilobytes), so it is set for this cursor's statements only."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        connection = self.connection
        connection.prepare_threshold = 0
        try:
            return super().execute(query, params, prepare=True, binary=binary)
        finally:
            connection.prepare_threshold = None


def prepared_cursor(connection) -> CursorWrapper:
    """A cursor of ``connection`` (PostgreSQL) whose statements the server parses and
    plans once per connection, then only executes: for the few statements every request
    of a hot route runs (the metric list's page).

    Values are bound on the server (``$1``..., each with the type psycopg gives it), so
    the statement must be valid with typed parameters. It is counted, logged and timed
    as Django's own cursors are (``django_assert_num_queries``, /metrics). Like the audit
    writer's insert, it assumes no transaction-pooling proxy between the app and the
    database.
    """
    connection.ensure_connection()
    cursor_class = _counting_cursor_class(_PreparingCursor, connection.alias, connection.vendor)
    return connection._prepare_cursor(cursor_class(connection.connection))


def check_connection_if_idle(connection) -> None:
    """The pool's check: ``ConnectionPool.check_connection`` unless ``connection`` was
    returned to the pool less than ``POOL_CHECK_IDLE_SECONDS`` ago."""
    returned_at = getattr(connection, _RETURNED_AT, None)
    if returned_at is None or time.monotonic() - returned_at >= POOL_CHECK_IDLE_SECONDS:
        ConnectionPool.check_connection(connection)


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self):
        # django-prometheus wraps the cursor class in a class it builds anew on every call,
        # and Django's connect() calls this on every checkout from the pool (whose
        # connections were configured when the pool was built): one class per cursor class
        # and alias is enough. Django's parameters, then the counting cursor class.
        conn_params = super(base.DatabaseWrapper, self).get_connection_params()
        conn_params["cursor_factory"] = _counting_cursor_class(
            conn_params["cursor_factory"], self.alias, self.vendor
        )
        return conn_params

    @property
    def pool(self):
        pool = super().pool
        # Django builds the pool with check=ConnectionPool.check_connection (when
        # CONN_HEALTH_CHECKS is on) and offers no option to pass another one.
        if pool is not None and pool._check is ConnectionPool.check_connection:
            pool._check = check_connection_if_idle
        return pool

    def _close(self):
        if self.connection is not None and self.pool is not None:
            setattr(self.connection, _RETURNED_AT, time.monotonic())
        super()._close()
