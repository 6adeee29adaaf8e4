"""The audit trail: one row per request that reads or changes someone's data.

Views (and the admin) say what the request did with ``audit_set``; the row is written
once, by ``AuditMiddleware``, when the response status is known. A later call in the
same request replaces an earlier one, so a request never writes two rows.
"""

from __future__ import annotations

import datetime
import logging
import os
import queue
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson
import psycopg
from django.conf import settings
from django.db import DatabaseError, connections, router
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from healthtrack.models import AuditAction, AuditEvent
from healthtrack.net import client_ip

logger = logging.getLogger("healthtrack.audit")

MAX_OBJECT_IDS = 1000


@dataclass
class AuditEntry:
    action: str
    resource_type: str
    subject_id: int | None = None
    object_ids: list[str] = field(default_factory=list)
    actor_id: int | None = None


def _http_request(request) -> HttpRequest:
    # DRF wraps Django's request; attributes must live on the underlying one so the
    # middleware sees them.
    return getattr(request, "_request", request)


def audit_set(
    request,
    *,
    action: str,
    resource_type: str,
    subject_id: int | None = None,
    object_ids: Iterable[object] = (),
    actor_id: int | None = None,
) -> None:
    """Say what this request did; written when the response is ready."""
    ids = [str(object_id) for object_id in object_ids]
    _http_request(request).audit_entry = AuditEntry(
        action=str(action),
        resource_type=resource_type,
        subject_id=subject_id,
        object_ids=ids[:MAX_OBJECT_IDS],
        actor_id=actor_id,
    )


def audit_deny(request, *, resource_type: str, subject_id: int | None, object_ids=()) -> None:
    audit_set(
        request,
        action=AuditAction.DENIED,
        resource_type=resource_type,
        subject_id=subject_id,
        object_ids=object_ids,
    )


def _storable(text: str) -> str:
    """Client text (a path, an id from one) as PostgreSQL can store it: NUL becomes U+FFFD.
    Losing the row of a request probing with %00 would hide exactly that probe."""
    return text.replace("\x00", "\ufffd")


# The columns written per request, in order; the table and column names come from the
# model, so a renamed field cannot silently drift from this statement.
_INSERT_FIELDS = (
    "timestamp",
    "actor",
    "subject",
    "action",
    "resource_type",
    "object_ids",
    "method",
    "path",
    "status",
    "ip",
    "user_agent",
    "request_id",
)
_TIMESTAMP_AT = _INSERT_FIELDS.index("timestamp")
_OBJECT_IDS_AT = _INSERT_FIELDS.index("object_ids")
_IP_AT = _INSERT_FIELDS.index("ip")
_ACTION_AT = _INSERT_FIELDS.index("action")
_insert_statements: dict[tuple[str, int, bool, bool], str] = {}
# SET LOCAL within the statement's own transaction: evaluated before its commit, gone
# after it, so the connection's setting for other statements is untouched and the row
# still takes one round trip.
_ASYNCHRONOUS_COMMIT_RETURNING = " RETURNING set_config('synchronous_commit', 'off', true)"


def _insert_sql(connection, rows: int, *, numbered: bool = False, asynchronous: bool = False) -> str:
    """A multi-row ``INSERT`` for ``rows`` audit rows, built once per (vendor, size,
    placeholder style, commit): ``%s`` for a Django cursor, ``$1, $2, ...`` for libpq;
    ``asynchronous`` (PostgreSQL, a statement that is its own transaction) commits it
    without waiting for the WAL flush."""
    key = (connection.vendor, rows, numbered, asynchronous)
    sql = _insert_statements.get(key)
    if sql is None:
        meta = AuditEvent._meta
        quote = connection.ops.quote_name
        columns = ", ".join(quote(meta.get_field(name).column) for name in _INSERT_FIELDS)
        width = len(_INSERT_FIELDS)
        placeholders = [f"${number}" if numbered else "%s" for number in range(1, rows * width + 1)]
        values = ", ".join(
            "(" + ", ".join(placeholders[row * width : (row + 1) * width]) + ")" for row in range(rows)
        )
        sql = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES {values}"  # noqa: S608
        if asynchronous:
            sql += _ASYNCHRONOUS_COMMIT_RETURNING
        _insert_statements[key] = sql
    return sql


def audit_row(*, request: HttpRequest, entry: AuditEntry, status: int | None) -> tuple:
    """The values of ``request``'s audit row, in ``_INSERT_FIELDS`` order."""
    user = getattr(request, "user", None)
    actor_id = entry.actor_id
    if actor_id is None and user is not None and user.is_authenticated:
        actor_id = user.pk
    return (
        timezone.now(),
        actor_id,
        entry.subject_id,
        entry.action,
        entry.resource_type,
        [_storable(object_id) for object_id in entry.object_ids],
        request.method or "",
        _storable(request.path[:255]),
        status,
        client_ip(request),
        _storable(request.META.get("HTTP_USER_AGENT", "")[:256]),
        getattr(request, "request_id", "")[:128],
    )


def audit_rows_insert(rows: list[tuple], *, using: str | None = None, server_binding: bool = False) -> None:
    """Insert audit rows with one statement on the current thread's connection.

    A multi-row ``INSERT`` rather than the ORM: it runs for every API request, and
    building model instances and compiling the query cost more than the write.
    ``server_binding`` (the group-commit writer, on PostgreSQL) runs it as a prepared
    statement through libpq, see ``_insert_prepared``.
    """
    connection = connections[using or router.db_for_write(AuditEvent)]
    if server_binding and connection.in_atomic_block:
        # The writer promises the rows are committed when this returns.
        raise DatabaseError("the audit connection is not idle: it is inside a transaction")
    if server_binding and connection.vendor == "postgresql":
        _insert_prepared(connection, rows)
        return
    json_adapt = connection.ops.adapt_json_value
    ip_adapt = connection.ops.adapt_ipaddressfield_value
    time_adapt = connection.ops.adapt_datetimefield_value
    params: list = []
    for row in rows:
        values = list(row)
        values[_TIMESTAMP_AT] = time_adapt(values[_TIMESTAMP_AT])
        values[_OBJECT_IDS_AT] = json_adapt(values[_OBJECT_IDS_AT], None)
        values[_IP_AT] = ip_adapt(values[_IP_AT])
        params.extend(values)
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(connection, len(rows)), params)


# Batch sizes the writer prepares once per connection; rarer, larger batches are sent
# with their parameters but planned each time.
_PREPARED_BATCH_SIZES = 16
_DUPLICATE_PREPARED_STATEMENT = "42P05"


def _text_param(value) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, list):
        return orjson.dumps(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat().encode()
    return str(value).encode()


def _insert_prepared(connection, rows: list[tuple]) -> None:
    """Run the audit ``INSERT`` on the connection's libpq handle, as a statement prepared
    once per batch size, with the values in PostgreSQL's text form.

    This is the group-commit writer's own connection, in autocommit, so the statement is
    its own transaction: committed when this returns. psycopg's cursor cost about three
    times as much CPU per row as the write itself, and the writer runs once per audited
    request. Any failure is a ``DatabaseError``, which makes the writer replace the
    connection and try once more.
    """
    connection.ensure_connection()
    with connection.wrap_database_errors:  # psycopg's errors as Django's, as for a cursor
        _insert_prepared_on(connection, rows)


def audit_commit_may_be_asynchronous(rows: list[tuple]) -> bool:
    """Whether a batch may commit without waiting for the WAL flush: only when every row
    is a read and ``AUDIT_READS_ASYNC_COMMIT`` is on.

    Why: waiting for the flush was the largest cost of a cached read under load (the
    benchmark's cache hits: ~31 % of the ceiling waiting, ~37 % not). The row is still
    committed before the answer leaves, so only a crash of PostgreSQL itself, within
    about 3 x ``wal_writer_delay``, can lose it; a change is never answered before its
    row is flushed.
    """
    return settings.AUDIT_READS_ASYNC_COMMIT and all(row[_ACTION_AT] == AuditAction.READ for row in rows)


def _insert_prepared_on(connection, rows: list[tuple]) -> None:
    handle = connection.connection
    pgconn = handle.pgconn
    if handle.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        # Inside a transaction the row would not be committed when this returns.
        raise DatabaseError("the audit connection is not idle")
    params = [_text_param(value) for row in rows for value in row]
    size = len(rows)
    asynchronous = audit_commit_may_be_asynchronous(rows)
    if size > _PREPARED_BATCH_SIZES:
        sql = _insert_sql(connection, size, numbered=True, asynchronous=asynchronous)
        result = pgconn.exec_params(sql.encode(), params)
    else:
        prepared = getattr(connection, "_audit_prepared", None)
        if prepared is None or prepared[0] is not handle:
            prepared = connection._audit_prepared = (handle, set())
        name = b"healthtrack_audit_insert_%s%d" % (b"async_" if asynchronous else b"", size)
        if name not in prepared[1]:
            sql = _insert_sql(connection, size, numbered=True, asynchronous=asynchronous)
            made = pgconn.prepare(name, sql.encode())
            if (
                made.status != psycopg.pq.ExecStatus.COMMAND_OK
                and (made.error_field(psycopg.pq.DiagnosticField.SQLSTATE) or b"").decode()
                != _DUPLICATE_PREPARED_STATEMENT
            ):
                raise DatabaseError(made.error_message.decode(errors="replace").strip())
            prepared[1].add(name)
        result = pgconn.exec_prepared(name, params)
    expected = psycopg.pq.ExecStatus.TUPLES_OK if asynchronous else psycopg.pq.ExecStatus.COMMAND_OK
    if result.status != expected:
        raise DatabaseError(result.error_message.decode(errors="replace").strip())


_STOP = object()


class AuditWriteError(Exception):
    """The audit row of a request could not be committed."""


class AuditWriter:
    """Group commit for the audit trail: one writer thread per process.

    A request hands its row over and waits until it is committed, so the answer still
    leaves only once its audit row is in the database (a crash of the app loses nothing;
    rows of reads may be committed before PostgreSQL flushes them to disk, see
    ``audit_commit_may_be_asynchronous``). The
    writer commits whatever has queued up meanwhile in one multi-row INSERT, on one
    connection it keeps: requests that only read the cache no longer check a connection
    out of the pool just to write their row, and rows arriving together share a commit.
    """

    MAX_BATCH = 500

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue | None = None
        self._pid: int | None = None

    def _start(self) -> queue.SimpleQueue:
        # Started lazily and again after a fork (gunicorn preloads the app, then forks).
        with self._lock:
            if self._queue is None or self._pid != os.getpid():
                self._queue = queue.SimpleQueue()
                self._pid = os.getpid()
                threading.Thread(
                    target=self._run, args=(self._queue,), name="audit-writer", daemon=True
                ).start()
            return self._queue

    def write(self, row: tuple, *, timeout: float) -> None:
        """Commit ``row``; AuditWriteError if it could not be within ``timeout`` seconds."""
        # A bare lock as a one-shot signal (held here, released by the writer): cheaper
        # than an Event, which this waits on for every audited request.
        done = threading.Lock()
        done.acquire()
        outcome: list[BaseException] = []
        self._start().put((row, done, outcome))
        if not done.acquire(timeout=timeout):
            raise AuditWriteError(f"not committed within {timeout} s")
        if outcome:
            raise AuditWriteError(str(outcome[0])) from outcome[0]

    def stop(self) -> None:
        """Finish what is queued, close the writer's connection and end its thread."""
        with self._lock:
            pending, self._queue = self._queue, None
        if pending is not None:
            done = threading.Lock()
            done.acquire()
            pending.put((_STOP, done, []))
            done.acquire(timeout=10)

    def _run(self, pending: queue.SimpleQueue) -> None:
        while True:
            batch = [pending.get()]
            while len(batch) < self.MAX_BATCH and batch[-1][0] is not _STOP:
                try:
                    batch.append(pending.get_nowait())
                except queue.Empty:
                    break
            if batch[-1][0] is _STOP:
                *batch, (_, stopped, _) = batch
                if batch:
                    self._commit_batch(batch)
                connections.close_all()
                stopped.release()
                return
            self._commit_batch(batch)

    def _commit_batch(self, batch: list) -> None:
        error = self._commit([row for row, _, _ in batch])
        for _, done, outcome in batch:
            if error is not None:
                outcome.append(error)
            done.release()

    @staticmethod
    def _commit(rows: list[tuple]) -> BaseException | None:
        for attempt in (1, 2):
            try:
                audit_rows_insert(rows, server_binding=True)
                return None
            except DatabaseError as error:
                # A connection broken by a database restart: drop it and retry once on
                # a fresh one; a second failure is reported to the waiting requests.
                connections[router.db_for_write(AuditEvent)].close()
                if attempt == 2:
                    return error
            except Exception as error:  # anything else is reported, never kills the writer
                return error
        return None


audit_writer = AuditWriter()


def audit_event_record(*, request: HttpRequest, entry: AuditEntry, status: int | None) -> None:
    """Write one audit row for ``request``: through the group-commit writer, or on the
    request's own connection when ``AUDIT_GROUP_COMMIT`` is off (the test suite, whose
    transactions must contain the rows they cause)."""
    row = audit_row(request=request, entry=entry, status=status)
    if settings.AUDIT_GROUP_COMMIT:
        audit_writer.write(row, timeout=settings.AUDIT_WRITE_TIMEOUT)
    else:
        audit_rows_insert([row])


class AuditMiddleware:
    """Write the request's audit entry, if any, once the status is known."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        audit_request_finish(request, status=response.status_code)
        return response


def audit_request_finish(request: HttpRequest, *, status: int) -> None:
    """Write the audit entry ``request`` set, if any, with the response ``status``."""
    entry = getattr(request, "audit_entry", None)
    if entry is not None and getattr(request, "database_unavailable", False):
        # The request already failed on the database; trying again would hold the
        # answer for another pool timeout. Nothing was read or changed (503).
        logger.warning("Audit event not written, the database is unavailable: %s", entry)
    elif entry is not None:
        try:
            audit_event_record(request=request, entry=entry, status=status)
        except Exception:
            # Never fail the user's request on the trail, but make it loud.
            logger.exception("Could not write audit event %s", entry)
