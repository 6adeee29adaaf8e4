"""The audit trail's group commit: requests wait until their row is committed."""

import threading
from unittest import mock

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from healthtrack import audit
from healthtrack.audit import AuditEntry, AuditWriteError, AuditWriter, audit_row
from healthtrack.models import AuditEvent
from healthtrack.tests.live import needs_postgresql
from users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _writers_release_their_connections(monkeypatch):
    """Each writer keeps a connection; end them so the test database can be dropped."""
    made: list[AuditWriter] = [audit.audit_writer]
    original_init = AuditWriter.__init__

    def tracked_init(self):
        original_init(self)
        made.append(self)

    monkeypatch.setattr(AuditWriter, "__init__", tracked_init)
    yield
    for writer in made:
        writer.stop()


def _row(request_id: str, action: str = "read") -> tuple:
    request = mock.Mock(
        method="GET", path="/api/v1/x", headers={"User-Agent": "test"}, META={"REMOTE_ADDR": "10.0.0.7"}
    )
    request.request_id = request_id
    request.user.is_authenticated = False
    request._healthtrack_client_ip = "10.0.0.7"
    entry = AuditEntry(action=action, resource_type="metric", subject_id=5, object_ids=["1", "2"])
    return audit_row(request=request, entry=entry, status=200)


def test_rows_from_many_threads_are_all_committed_before_write_returns():
    writer = AuditWriter()
    errors: list[Exception] = []

    def write(number: int) -> None:
        try:
            writer.write(_row(f"req-{number}"), timeout=10)
        except Exception as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(AuditEvent.objects.values_list("request_id", flat=True)) == sorted(
        f"req-{n}" for n in range(40)
    )
    event = AuditEvent.objects.get(request_id="req-7")
    assert (event.action, event.subject_id, event.object_ids, event.ip, event.status) == (
        "read", 5, ["1", "2"], "10.0.0.7", 200,
    )  # fmt: skip


def test_a_failed_commit_is_reported_to_the_waiting_request_and_the_writer_goes_on():
    writer = AuditWriter()
    with (
        mock.patch.object(audit, "audit_rows_insert", side_effect=DatabaseError("down")),
        pytest.raises(AuditWriteError, match="down"),
    ):
        writer.write(_row("lost"), timeout=10)
    writer.write(_row("after"), timeout=10)
    assert list(AuditEvent.objects.values_list("request_id", flat=True)) == ["after"]


def test_a_broken_connection_is_replaced_and_the_row_still_committed():
    writer = AuditWriter()
    real_insert = audit.audit_rows_insert
    calls = []

    def flaky(rows, **kwargs):
        calls.append(len(rows))
        if len(calls) == 1:
            raise DatabaseError("server closed the connection unexpectedly")
        return real_insert(rows, **kwargs)

    with mock.patch.object(audit, "audit_rows_insert", side_effect=flaky):
        writer.write(_row("retried"), timeout=10)
    assert calls == [1, 1]
    assert AuditEvent.objects.filter(request_id="retried").exists()


def test_a_forked_process_starts_its_own_writer_thread():
    writer = AuditWriter()
    writer.write(_row("parent"), timeout=10)
    parent_queue = writer._queue
    writer._pid = -1  # as seen from a child process after fork: the thread did not survive
    writer.write(_row("child"), timeout=10)
    assert writer._queue is not parent_queue
    assert AuditEvent.objects.count() == 2
    stopped = threading.Lock()  # the writer releases it once the thread has finished
    stopped.acquire()
    parent_queue.put((audit._STOP, stopped, []))  # end the parent's thread in this test
    assert stopped.acquire(timeout=10)


def test_the_middleware_commits_through_the_writer(settings, make_client):
    settings.AUDIT_GROUP_COMMIT = True
    user = UserFactory()
    response = make_client(user).get("/api/v1/users/me")
    assert response.status_code == 200
    event = AuditEvent.objects.get()
    assert (event.action, event.subject_id, event.actor_id) == ("read", user.pk, user.pk)


def _stored(request_id: str) -> tuple:
    event = AuditEvent.objects.get(request_id=request_id)
    return (
        event.timestamp, event.actor_id, event.subject_id, event.action, event.resource_type,
        event.object_ids, event.method, event.path, event.status, event.ip, event.user_agent,
    )  # fmt: skip


@pytest.mark.parametrize("action", ["read", "create"])  # committed without / with the flush
@pytest.mark.parametrize("size", [1, 2, 17])  # 17: past the prepared batch sizes
def test_the_prepared_insert_stores_what_the_plain_insert_stores(size, action):
    """The writer's insert (prepared through libpq on PostgreSQL, the plain one elsewhere)
    against the plain insert, field by field."""
    user = UserFactory()
    when = timezone.now()
    rows = []
    for number in range(size):
        for way in ("plain", "prepared"):
            row = list(_row(f"{way}-{number}", action))
            row[0] = when
            row[1] = user.pk if number % 2 else None  # actor, or none (signed out)
            row[5] = ['a "quoted" id', "ünïcode", "back\\slash"]
            row[7] = "/api/v1/ünïcode path?x='1'"
            row[8] = None if number == 0 else 201
            row[9] = None if number == 0 else "2001:db8::7"
            rows.append((way, tuple(row)))
    audit.audit_rows_insert([row for way, row in rows if way == "plain"])
    audit.audit_rows_insert([row for way, row in rows if way == "prepared"], server_binding=True)
    for number in range(size):
        assert _stored(f"prepared-{number}") == _stored(f"plain-{number}")


def test_a_statement_prepared_earlier_on_the_same_connection_is_reused():
    audit.audit_rows_insert([_row("first")], server_binding=True)
    # As for a new writer handed the same pooled connection (PostgreSQL keeps the statement).
    connection.__dict__.pop("_audit_prepared", None)
    audit.audit_rows_insert([_row("second")], server_binding=True)
    assert AuditEvent.objects.filter(request_id__in=["first", "second"]).count() == 2


def test_the_prepared_insert_refuses_a_connection_inside_a_transaction():
    with transaction.atomic():
        with pytest.raises(DatabaseError, match="not idle"):
            audit.audit_rows_insert([_row("uncommitted")], server_binding=True)
        AuditEvent.objects.exists()  # the transaction has begun on the server too
        with pytest.raises(DatabaseError, match="not idle"):
            audit.audit_rows_insert([_row("uncommitted")], server_binding=True)
    assert not AuditEvent.objects.filter(request_id="uncommitted").exists()


def test_only_a_batch_of_reads_may_skip_waiting_for_the_flush(settings):
    settings.AUDIT_READS_ASYNC_COMMIT = True
    assert audit.audit_commit_may_be_asynchronous([_row("a"), _row("b")])
    for action in ("create", "update", "delete", "export", "login", "login_failed", "logout", "denied"):
        assert not audit.audit_commit_may_be_asynchronous([_row("a"), _row("b", action)]), action
    settings.AUDIT_READS_ASYNC_COMMIT = False
    assert not audit.audit_commit_may_be_asynchronous([_row("a")])


@needs_postgresql
@pytest.mark.parametrize(("action", "commit_inside"), [("read", "off"), ("create", "on")])
def test_the_writers_insert_sets_the_commit_of_its_own_transaction_only(settings, action, commit_inside):
    """What the insert sets is local to the transaction it commits: seen from inside an
    enclosing transaction, gone after it; the connection's own setting is untouched."""
    settings.AUDIT_READS_ASYNC_COMMIT = True
    rows = [_row("inside", action)]
    sql = audit._insert_sql(
        connection, 1, numbered=True, asynchronous=audit.audit_commit_may_be_asynchronous(rows)
    )
    params = [audit._text_param(value) for value in rows[0]]
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone() == ("on",)
        with transaction.atomic():
            cursor.execute("SELECT 1")  # the transaction has begun on the server
            connection.connection.pgconn.exec_params(sql.encode(), params)
            cursor.execute("SHOW synchronous_commit")
            assert cursor.fetchone() == (commit_inside,)
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone() == ("on",)
    audit.audit_rows_insert(rows, server_binding=True)  # and through the writer's path
    assert AuditEvent.objects.filter(request_id="inside", action=action).count() == 2
