"""Database failures are 503s (not 500s), and only failures to reach the database."""

from __future__ import annotations

import logging
import sqlite3
from unittest import mock

import psycopg
import psycopg_pool
import pytest
from django.db import IntegrityError, InterfaceError, OperationalError, ProgrammingError
from django.http import HttpResponse

from healthtrack.errors import database_unavailable

pytestmark = pytest.mark.django_db


def wrapped(django_error, cause):
    """A Django database error as Django raises it: the driver's error as its cause."""
    error = django_error(*cause.args)
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(
            wrapped(OperationalError, psycopg.OperationalError("connection refused")), id="connection-refused"
        ),
        pytest.param(
            wrapped(OperationalError, psycopg_pool.PoolTimeout("couldn't get a connection after 2.50 sec")),
            id="pool-timeout",
        ),
        pytest.param(
            wrapped(InterfaceError, psycopg.InterfaceError("connection already closed")), id="closed"
        ),
        pytest.param(
            wrapped(OperationalError, psycopg.errors.AdminShutdown("terminating")), id="57P01-shutdown"
        ),
        pytest.param(
            wrapped(OperationalError, psycopg.errors.TooManyConnections("too many clients")), id="53300"
        ),
        pytest.param(
            wrapped(OperationalError, sqlite3.OperationalError("database is locked")), id="sqlite-locked"
        ),
    ],
)
def test_unreachable_database_errors(error):
    assert database_unavailable(error)


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(
            wrapped(OperationalError, sqlite3.OperationalError("no such table: x")), id="sqlite-bug"
        ),
        pytest.param(
            wrapped(ProgrammingError, psycopg.errors.UndefinedTable("no table")), id="undefined-table"
        ),
        pytest.param(wrapped(IntegrityError, psycopg.errors.UniqueViolation("duplicate")), id="integrity"),
        pytest.param(ValueError("not a database error"), id="other"),
    ],
)
def test_bugs_are_not_mistaken_for_outages(error):
    assert not database_unavailable(error)


def failing_database(*args, **kwargs):
    raise wrapped(OperationalError, psycopg_pool.PoolTimeout("couldn't get a connection after 2.50 sec"))


def test_api_route_answers_503_json(auth_client):
    auth_client.get("/api/v1/users/me")  # warm the authentication snapshot
    with mock.patch("users.selectors.user_get_visible", side_effect=failing_database):
        response = auth_client.get("/api/v1/users/me")
    assert response.status_code == 503
    assert response.json() == {
        "detail": "The database is unavailable; try again shortly.",
        "code": "service_unavailable",
    }
    assert response["Retry-After"] == "2"


def test_no_second_wait_for_the_audit_write_once_the_database_failed(rf, caplog):
    from healthtrack.audit import AuditMiddleware, audit_set
    from healthtrack.errors import mark_database_unavailable

    def view(request):
        audit_set(request, action="read", resource_type="profile", subject_id=1)
        mark_database_unavailable(request)
        return HttpResponse(status=503)

    with (
        mock.patch("healthtrack.audit.audit_event_record") as record,
        caplog.at_level(logging.WARNING, logger="healthtrack.audit"),
    ):
        AuditMiddleware(view)(rf.get("/api/v1/users/me"))
    record.assert_not_called()
    assert "Audit event not written, the database is unavailable" in caplog.text


@pytest.mark.urls("healthtrack.tests.boom_urls")
def test_non_drf_api_route_answers_503_json(api_client):
    response = api_client.get("/api/v1/database-down")
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"


def test_admin_answers_503_not_a_500(client):
    from users.admin import UserAdmin
    from users.tests.factories import AdminFactory

    client.force_login(AdminFactory())
    with mock.patch.object(UserAdmin, "get_queryset", side_effect=failing_database):
        response = client.get("/admin/users/user/")
    assert response.status_code == 503
    assert response["Retry-After"] == "2"


def test_a_real_bug_is_still_a_500(auth_client):
    def bug(*args, **kwargs):
        raise wrapped(ProgrammingError, psycopg.errors.UndefinedColumn("column does not exist"))

    auth_client.get("/api/v1/users/me")
    with mock.patch("users.selectors.user_get_visible", side_effect=bug):
        response = auth_client.get("/api/v1/users/me")
    assert response.status_code == 500
    assert response.json()["code"] == "server_error"
