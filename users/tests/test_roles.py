"""Every users route for every role: owner, another user, a clinician with and without
the patient's grant, support staff and a superuser, all looking at one patient."""

from __future__ import annotations

import pytest

from healthtrack.models import AuditEvent
from users.models import CareTeamMembership, User
from users.tests.factories import (
    AdminFactory,
    CareTeamMembershipFactory,
    ClinicianFactory,
    SupportFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

ROLES = ["owner", "other_user", "clinician_granted", "clinician_not_granted", "support", "superuser"]
PHI = "Asthma since childhood."


@pytest.fixture
def world(db):
    patient = UserFactory(username="patient", profile__medical_history=PHI)
    granted = ClinicianFactory(username="granted")
    membership = CareTeamMembershipFactory(patient=patient, clinician=granted)
    actors = {
        "owner": patient,
        "other_user": UserFactory(username="other"),
        "clinician_granted": granted,
        "clinician_not_granted": ClinicianFactory(username="stranger"),
        "support": SupportFactory(username="helpdesk"),
        "superuser": AdminFactory(username="root"),
    }
    return {"patient": patient, "membership": membership, "actors": actors}


def call(make_client, world, role, method, path, body=None):
    client = make_client(world["actors"][role])
    return (
        getattr(client, method)(path, body, format="json")
        if body is not None
        else getattr(client, method)(path)
    )


def last_audit_action():
    event = AuditEvent.objects.order_by("-id").first()
    return event.action if event else None


# What each role gets when it reads the patient's profile: status, and whether the PHI
# is in the body (support staff see the account, never the PHI).
READ = {
    "owner": (200, True),
    "other_user": (404, None),
    "clinician_granted": (200, True),
    "clinician_not_granted": (404, None),
    "support": (200, False),
    "superuser": (200, True),
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", ["by_id", "by_username"])
def test_read_profile(make_client, world, role, route):
    patient = world["patient"]
    path = f"/api/v1/users/{patient.pk}" if route == "by_id" else "/api/v1/users/username/patient"
    response = call(make_client, world, role, "get", path)
    status, phi_visible = READ[role]
    assert response.status_code == status
    if status == 200:
        assert response.json()["id"] == patient.pk
        assert (response.json()["medical_history"] == PHI) is phi_visible
        assert last_audit_action() == "read"
    else:
        assert response.json()["code"] == "not_found"
        assert last_audit_action() == "denied"


@pytest.mark.parametrize("role", ROLES)
def test_list_users(make_client, world, role):
    body = call(make_client, world, role, "get", "/api/v1/users?limit=500").json()
    ids = {row["id"] for row in body["results"]}
    expected_visible = role in ("owner", "clinician_granted", "support", "superuser")
    assert (world["patient"].pk in ids) is expected_visible
    assert world["actors"][role].pk in ids  # everyone sees themselves
    if role in ("other_user", "clinician_not_granted"):
        assert ids == {world["actors"][role].pk}


CHANGE = {
    "owner": 200,
    "other_user": 404,
    "clinician_granted": 404,  # reads, never writes
    "clinician_not_granted": 404,
    "support": 404,  # manages accounts, never profile contents
    "superuser": 200,
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("method", ["patch", "put"])
def test_change_profile(make_client, world, role, method):
    patient = world["patient"]
    body = {"first_name": "Changed", "email": patient.email}
    response = call(make_client, world, role, method, f"/api/v1/users/{patient.pk}", body)
    assert response.status_code == CHANGE[role]
    patient.refresh_from_db()
    assert (patient.first_name == "Changed") is (CHANGE[role] == 200)
    assert last_audit_action() == ("update" if CHANGE[role] == 200 else "denied")


DEACTIVATE = {
    "owner": 204,
    "other_user": 404,
    "clinician_granted": 404,
    "clinician_not_granted": 404,
    "support": 204,
    "superuser": 204,
}


@pytest.mark.parametrize("role", ROLES)
def test_deactivate_account(make_client, world, role):
    patient = world["patient"]
    response = call(make_client, world, role, "delete", f"/api/v1/users/{patient.pk}")
    assert response.status_code == DEACTIVATE[role]
    patient.refresh_from_db()
    assert patient.is_active is (DEACTIVATE[role] != 204)
    assert last_audit_action() == ("delete" if DEACTIVATE[role] == 204 else "denied")


@pytest.mark.parametrize("role", ROLES)
def test_care_team_of_the_patient_is_only_theirs(make_client, world, role):
    membership = world["membership"]
    listed = call(make_client, world, role, "get", "/api/v1/users/me/care-team").json()
    assert (membership.pk in {row["id"] for row in listed["results"]}) is (role == "owner")

    response = call(make_client, world, role, "delete", f"/api/v1/users/me/care-team/{membership.pk}")
    assert response.status_code == (204 if role == "owner" else 404)
    assert CareTeamMembership.objects.filter(pk=membership.pk).exists() is (role != "owner")


@pytest.mark.parametrize("role", ROLES)
def test_granting_on_own_team_only(make_client, world, role):
    actor = world["actors"][role]
    clinician = ClinicianFactory()
    response = call(
        make_client, world, role, "post", "/api/v1/users/me/care-team", {"clinician": clinician.username}
    )
    assert response.status_code == 201
    # The grant is always on the caller's own team, whoever the caller is.
    assert CareTeamMembership.objects.get(pk=response.json()["id"]).patient_id == actor.pk
    if role != "owner":
        assert not CareTeamMembership.objects.filter(patient=world["patient"], clinician=clinician).exists()


@pytest.mark.parametrize("role", ROLES)
def test_patients_list(make_client, world, role):
    response = call(make_client, world, role, "get", "/api/v1/users/me/patients")
    if role.startswith("clinician"):
        assert response.status_code == 200
        ids = [row["patient"]["id"] for row in response.json()["results"]]
        assert ids == ([world["patient"].pk] if role == "clinician_granted" else [])
    else:
        assert response.status_code == 403


def test_deactivated_patient_disappears_from_the_clinicians_view(make_client, world):
    User.objects.filter(pk=world["patient"].pk).update(is_active=False)
    client = make_client(world["actors"]["clinician_granted"])
    assert client.get(f"/api/v1/users/{world['patient'].pk}").status_code == 404
    assert client.get("/api/v1/users/me/patients").json()["count"] == 0
