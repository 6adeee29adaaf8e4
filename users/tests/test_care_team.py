"""Care team: a person grants and revokes a clinician's read access to their data."""

import pytest
from django.contrib.auth.models import Group

from healthtrack.models import AuditEvent
from users.models import CLINICIANS_GROUP, CareTeamMembership
from users.tests.factories import (
    AdminFactory,
    CareTeamMembershipFactory,
    ClinicianFactory,
    SupportFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

CARE_TEAM = "/api/v1/users/me/care-team"
PATIENTS = "/api/v1/users/me/patients"


def member(membership_id):
    return f"{CARE_TEAM}/{membership_id}"


def profile(user_id):
    return f"/api/v1/users/{user_id}"


def test_grant_by_username_then_list(auth_client, user):
    clinician = ClinicianFactory(username="dr_who", first_name="John", last_name="Smith")
    response = auth_client.post(CARE_TEAM, {"clinician": "DR_WHO"}, format="json")
    assert response.status_code == 201
    body = response.json()
    membership = CareTeamMembership.objects.get()
    assert (membership.patient_id, membership.clinician_id) == (user.pk, clinician.pk)
    assert body == {
        "id": membership.pk,
        "clinician": {
            "id": clinician.pk,
            "username": "dr_who",
            "first_name": "John",
            "last_name": "Smith",
            "email": clinician.email,
        },
        "created_at": body["created_at"],
    }
    assert body["created_at"].endswith(("Z", "+00:00"))

    listed = auth_client.get(CARE_TEAM).json()
    assert listed["count"] == 1
    assert listed["results"] == [body]


def test_grant_by_email(auth_client):
    clinician = ClinicianFactory(email="house@example.org")
    response = auth_client.post(CARE_TEAM, {"clinician": "House@Example.org"}, format="json")
    assert response.status_code == 201
    assert response.json()["clinician"]["id"] == clinician.pk


def test_granting_twice_is_idempotent(auth_client):
    clinician = ClinicianFactory()
    first = auth_client.post(CARE_TEAM, {"clinician": clinician.username}, format="json")
    again = auth_client.post(CARE_TEAM, {"clinician": clinician.email}, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert CareTeamMembership.objects.count() == 1


@pytest.mark.parametrize(
    "make_login",
    [
        pytest.param(lambda: UserFactory().username, id="ordinary-user"),
        pytest.param(lambda: SupportFactory().username, id="support-staff"),
        pytest.param(lambda: AdminFactory().email, id="superuser"),
        pytest.param(lambda: ClinicianFactory(is_active=False).username, id="inactive-clinician"),
        pytest.param(lambda: "nobody-at-all", id="unknown-account"),
        pytest.param(lambda: "nobody@example.com", id="unknown-email"),
    ],
)
def test_only_active_clinicians_can_be_granted(auth_client, make_login):
    response = auth_client.post(CARE_TEAM, {"clinician": make_login()}, format="json")
    assert response.status_code == 400
    # One answer for all: it does not tell which accounts exist.
    assert response.json()["errors"] == {"clinician": ["No active clinician has this username or email."]}
    assert not CareTeamMembership.objects.exists()


def test_a_non_staff_member_of_the_clinicians_group_is_no_clinician(auth_client):
    outsider = UserFactory()
    outsider.groups.add(Group.objects.get_or_create(name=CLINICIANS_GROUP)[0])
    assert auth_client.post(CARE_TEAM, {"clinician": outsider.username}, format="json").status_code == 400


def test_granting_yourself_is_400(make_client):
    clinician = ClinicianFactory()
    response = make_client(clinician).post(CARE_TEAM, {"clinician": clinician.username}, format="json")
    assert response.status_code == 400
    assert "clinician" in response.json()["errors"]
    assert not CareTeamMembership.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "clinician"), ({"clinician": ""}, "clinician"), ({"clinician": "x", "patient": 1}, "patient")],
)
def test_bad_grant_bodies_name_the_field(auth_client, body, field):
    response = auth_client.post(CARE_TEAM, body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_revoke(auth_client, user):
    membership = CareTeamMembershipFactory(patient=user)
    response = auth_client.delete(member(membership.pk))
    assert response.status_code == 204
    assert not CareTeamMembership.objects.exists()
    assert auth_client.delete(member(membership.pk)).status_code == 404


def test_revoking_someone_elses_membership_is_404_and_audited(auth_client, user, other_user):
    theirs = CareTeamMembershipFactory(patient=other_user)
    response = auth_client.delete(member(theirs.pk))
    assert response.status_code == 404
    assert CareTeamMembership.objects.filter(pk=theirs.pk).exists()
    event = AuditEvent.objects.get()
    assert (event.action, event.actor_id, event.subject_id, event.object_ids) == (
        "denied",
        user.pk,
        other_user.pk,
        [str(theirs.pk)],
    )


def test_a_clinician_cannot_revoke_through_the_patients_route(make_client, user):
    membership = CareTeamMembershipFactory(patient=user)
    response = make_client(membership.clinician).delete(member(membership.pk))
    assert response.status_code == 404
    assert CareTeamMembership.objects.filter(pk=membership.pk).exists()


@pytest.mark.parametrize("membership_id", ["0", str(2**63), str(2**70)])
def test_absurd_membership_ids_are_404(auth_client, membership_id):
    assert auth_client.delete(f"{CARE_TEAM}/{membership_id}").status_code == 404


def test_revocation_takes_effect_on_the_next_request(make_client, auth_client, user):
    clinician = ClinicianFactory()
    clinician_client = make_client(clinician)
    membership_id = auth_client.post(CARE_TEAM, {"clinician": clinician.username}, format="json").json()["id"]
    assert clinician_client.get(profile(user.pk)).status_code == 200
    assert [row["patient"]["id"] for row in clinician_client.get(PATIENTS).json()["results"]] == [user.pk]

    assert auth_client.delete(member(membership_id)).status_code == 204

    assert clinician_client.get(profile(user.pk)).status_code == 404
    assert clinician_client.get(PATIENTS).json()["count"] == 0
    ids = [row["id"] for row in clinician_client.get("/api/v1/users").json()["results"]]
    assert user.pk not in ids


def test_care_team_check_reads_the_database_every_time(user, django_assert_num_queries):
    from healthtrack.permissions import Access, can_access
    from users.selectors import user_auth_snapshot, user_from_snapshot

    clinician = ClinicianFactory()
    membership = CareTeamMembershipFactory(patient=user, clinician=clinician)
    actor = user_from_snapshot(user_auth_snapshot(user_id=clinician.pk))
    with django_assert_num_queries(1):
        assert can_access(actor, user.pk, Access.READ)
    membership.delete()
    with django_assert_num_queries(1):
        assert not can_access(actor, user.pk, Access.READ)


def test_care_team_list_shows_only_own_memberships(auth_client, user, other_user):
    mine = CareTeamMembershipFactory(patient=user)
    CareTeamMembershipFactory(patient=other_user)
    body = auth_client.get(CARE_TEAM).json()
    assert [row["id"] for row in body["results"]] == [mine.pk]


def test_care_team_list_query_count_does_not_grow(auth_client, user, django_assert_num_queries):
    for _ in range(6):
        CareTeamMembershipFactory(patient=user)
    auth_client.get("/api/v1/users/me")  # warm the authentication snapshot
    # count + page (clinicians joined) + audit row
    with django_assert_num_queries(3):
        small = auth_client.get(f"{CARE_TEAM}?limit=2").json()
    with django_assert_num_queries(3):
        everything = auth_client.get(f"{CARE_TEAM}?limit=500").json()
    assert (len(small["results"]), len(everything["results"]), everything["count"]) == (2, 6, 6)


def test_patients_list_for_a_clinician(make_client, django_assert_num_queries):
    clinician = ClinicianFactory()
    patients = [CareTeamMembershipFactory(clinician=clinician).patient for _ in range(4)]
    CareTeamMembershipFactory(clinician=clinician, patient=UserFactory(is_active=False))
    CareTeamMembershipFactory()  # someone else's patient
    client = make_client(clinician)
    client.get("/api/v1/users/me")
    with django_assert_num_queries(3):
        small = client.get(f"{PATIENTS}?limit=1").json()
    with django_assert_num_queries(3):
        body = client.get(PATIENTS).json()
    assert len(small["results"]) == 1
    assert body["count"] == 4
    assert [row["patient"]["id"] for row in body["results"]] == [p.pk for p in patients]
    assert set(body["results"][0]["patient"]) == {"id", "username", "first_name", "last_name", "email"}


@pytest.mark.parametrize("make_caller", [UserFactory, SupportFactory, AdminFactory])
def test_patients_list_is_403_for_non_clinicians(make_client, make_caller):
    response = make_client(make_caller()).get(PATIENTS)
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_grants_and_revocations_are_audited(auth_client, user):
    clinician = ClinicianFactory()
    membership_id = auth_client.post(CARE_TEAM, {"clinician": clinician.username}, format="json").json()["id"]
    auth_client.delete(member(membership_id))
    auth_client.get(CARE_TEAM)
    events = list(
        AuditEvent.objects.order_by("id").values_list("action", "resource_type", "subject_id", "object_ids")
    )
    assert events == [
        ("create", "care_team", user.pk, [str(membership_id)]),
        ("delete", "care_team", user.pk, [str(membership_id)]),
        ("read", "care_team", user.pk, []),
    ]


def test_care_team_routes_need_authentication(api_client):
    assert api_client.get(CARE_TEAM).status_code == 401
    assert api_client.post(CARE_TEAM, {"clinician": "x"}, format="json").status_code == 401
    assert api_client.delete(member(1)).status_code == 401
    assert api_client.get(PATIENTS).status_code == 401
