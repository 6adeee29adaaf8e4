"""The audit trail (and the log) never hold health values, tokens or passwords."""

from __future__ import annotations

import logging

import pytest
from rest_framework.test import APIClient

from healthtrack.models import AuditEvent
from users.tests.factories import ClinicianFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "Sunflower-Quartz-Orbit-91"
NEW_PASSWORD = "Lantern-Meadow-Cobalt-27"
WRONG_PASSWORD = "Guessing-Wrongly-Again-55"
MEDICAL_HISTORY = "Bipolar disorder, lithium 300mg"
NEW_MEDICAL_HISTORY = "Type 1 diabetes, insulin pump"
BIRTHDAY = "1979-11-23"


def test_a_whole_session_leaves_no_secret_in_the_trail_or_the_log(caplog):
    clinician = ClinicianFactory(username="dr_audit")
    stranger = UserFactory()
    client = APIClient(HTTP_USER_AGENT="audit-test/1.0", HTTP_X_REQUEST_ID="req-audit-1")
    secrets = {PASSWORD, NEW_PASSWORD, WRONG_PASSWORD, MEDICAL_HISTORY, NEW_MEDICAL_HISTORY, BIRTHDAY}

    with caplog.at_level(logging.DEBUG):
        registered = client.post(
            "/api/v1/users/register",
            {
                "email": "audit@example.com",
                "username": "audited",
                "password": PASSWORD,
                "medical_history": MEDICAL_HISTORY,
                "date_of_birth": BIRTHDAY,
            },
            format="json",
        )
        assert registered.status_code == 201
        assert (
            client.post(
                "/api/v1/auth/token", {"username": "audited", "password": WRONG_PASSWORD}, format="json"
            ).status_code
            == 401
        )
        tokens = client.post(
            "/api/v1/auth/token", {"username": "audited", "password": PASSWORD}, format="json"
        ).json()
        rotated = client.post(
            "/api/v1/auth/token/refresh", {"refresh": tokens["refresh"]}, format="json"
        ).json()
        secrets |= {tokens["access"], tokens["refresh"], rotated["access"], rotated["refresh"]}

        client.credentials(HTTP_AUTHORIZATION=f"Bearer {rotated['access']}")
        assert client.get("/api/v1/users/me").status_code == 200
        # A token in a query string must not reach the trail through the path either.
        assert client.get(f"/api/v1/users/me?access_token={rotated['access']}").status_code == 200
        assert (
            client.patch(
                "/api/v1/users/me", {"medical_history": NEW_MEDICAL_HISTORY}, format="json"
            ).status_code
            == 200
        )
        assert (
            client.post("/api/v1/users/me/care-team", {"clinician": "dr_audit"}, format="json").status_code
            == 201
        )
        assert client.get(f"/api/v1/users/{stranger.pk}").status_code == 404
        changed = client.post(
            "/api/v1/auth/password", {"old_password": PASSWORD, "new_password": NEW_PASSWORD}, format="json"
        ).json()
        secrets |= {changed["access"], changed["refresh"]}
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {changed['access']}")
        assert (
            client.post("/api/v1/auth/logout", {"refresh": changed["refresh"]}, format="json").status_code
            == 204
        )

    rows = list(AuditEvent.objects.order_by("id").values())
    actions = [row["action"] for row in rows]
    assert actions == [
        "create",  # register
        "login_failed",
        "login",
        "read",
        "read",
        "update",  # profile
        "create",  # care team grant
        "denied",
        "update",  # password
        "logout",
    ]
    assert all(row["request_id"] == "req-audit-1" and row["user_agent"] == "audit-test/1.0" for row in rows)
    assert all("?" not in row["path"] for row in rows)

    trail = repr(rows)
    log = caplog.text + repr([record.__dict__ for record in caplog.records])
    for secret in secrets:
        # Whole values, and the signature part alone for tokens.
        needles = {secret, secret.rsplit(".", 1)[-1]} if secret.count(".") == 2 else {secret}
        for needle in needles:
            assert needle not in trail, f"audit trail holds {needle[:12]}..."
            assert needle not in log, f"log holds {needle[:12]}..."
    assert clinician.pk  # the grant named the clinician by username only


def test_the_audit_event_has_no_field_that_could_carry_a_value():
    """The columns are fixed: identifiers, a path without its query, and request metadata."""
    names = {field.name for field in AuditEvent._meta.get_fields()}
    assert names == {
        "id",
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
    }


def test_object_ids_are_identifiers_not_values(auth_client, user):
    auth_client.get("/api/v1/users")
    event = AuditEvent.objects.get()
    assert event.object_ids == [str(user.pk)]
