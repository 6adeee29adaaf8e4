import pytest

from healthtrack.models import AuditEvent
from users.models import User
from users.tests.factories import (
    AdminFactory,
    CareTeamMembershipFactory,
    ClinicianFactory,
    SupportFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

ME = "/api/v1/users/me"


def detail(user_id):
    return f"/api/v1/users/{user_id}"


def test_me_returns_own_profile(auth_client, user):
    response = auth_client.get(ME)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == user.pk
    assert body["medical_history"] == "Asthma since childhood."
    assert "password" not in body


@pytest.mark.parametrize("path", [ME, ME + "/"])
def test_trailing_slash_is_optional(auth_client, path):
    assert auth_client.get(path).status_code == 200


def test_unauthenticated_is_401_json(api_client):
    response = api_client.get(ME)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_patch_me_changes_profile(auth_client, user):
    response = auth_client.patch(
        ME, {"timezone": "Asia/Tokyo", "medical_history": "None.", "first_name": "Augusta"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["timezone"] == "Asia/Tokyo"
    user.refresh_from_db()
    assert user.first_name == "Augusta"
    assert user.profile.timezone == "Asia/Tokyo"
    assert user.profile.medical_history == "None."


def test_put_round_trip_of_get_body(auth_client):
    body = auth_client.get(ME).json()
    body["occupation"] = "Mathematician"
    response = auth_client.put(ME, body, format="json")
    assert response.status_code == 200
    assert response.json()["occupation"] == "Mathematician"


def test_put_requires_email(auth_client):
    response = auth_client.put(ME, {"first_name": "X"}, format="json")
    assert response.status_code == 400
    assert "email" in response.json()["errors"]


@pytest.mark.parametrize("field", ["is_staff", "is_superuser", "is_active", "password", "auth_epoch"])
def test_privileged_fields_cannot_be_set(auth_client, user, field):
    response = auth_client.patch(ME, {field: True}, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    user.refresh_from_db()
    assert not user.is_staff and not user.is_superuser and user.is_active


def test_read_only_fields_are_ignored(auth_client, user):
    response = auth_client.patch(
        ME, {"id": 999, "username": "hijack", "date_joined": "2000-01-01T00:00:00Z"}, format="json"
    )
    assert response.status_code == 200
    user.refresh_from_db()
    assert user.username != "hijack"
    assert User.objects.filter(pk=999).count() == 0


def test_email_change_to_taken_email_is_400(auth_client):
    UserFactory(email="taken@example.com")
    response = auth_client.patch(ME, {"email": "TAKEN@example.com"}, format="json")
    assert response.status_code == 400
    assert "email" in response.json()["errors"]


def test_invalid_timezone_is_400(auth_client):
    response = auth_client.patch(ME, {"timezone": "Nowhere/Land"}, format="json")
    assert response.status_code == 400
    assert "timezone" in response.json()["errors"]


def test_own_id_and_username(auth_client, user):
    assert auth_client.get(detail(user.pk)).json()["id"] == user.pk
    response = auth_client.get(f"/api/v1/users/username/{user.username.upper()}")
    assert response.status_code == 200
    assert response.json()["id"] == user.pk


def test_other_users_id_is_404_and_denial_audited(auth_client, user, other_user):
    response = auth_client.get(detail(other_user.pk))
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}
    event = AuditEvent.objects.get()
    assert (event.action, event.actor_id, event.subject_id) == ("denied", user.pk, other_user.pk)


def test_other_users_username_is_404(auth_client, other_user):
    assert auth_client.get(f"/api/v1/users/username/{other_user.username}").status_code == 404


@pytest.mark.parametrize("raw", ["a%00b", "%00"])
def test_a_username_with_nul_is_404_and_audited(auth_client, user, raw):
    """Found by fuzzing: %00 in the path reached PostgreSQL (a 500), and the audit row
    naming it could not be written either."""
    response = auth_client.get(f"/api/v1/users/username/{raw}")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    event = AuditEvent.objects.get()
    assert (event.action, event.actor_id) == ("denied", user.pk)
    assert "\x00" not in event.object_ids[0] and "\x00" not in event.path


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_cannot_change_or_delete_other_user(auth_client, other_user, method):
    response = getattr(auth_client, method)(detail(other_user.pk), {"first_name": "Hacked"}, format="json")
    assert response.status_code == 404
    other_user.refresh_from_db()
    assert other_user.first_name != "Hacked"
    assert other_user.is_active


def test_missing_and_absurd_ids_are_404(auth_client):
    assert auth_client.get(detail(987654)).status_code == 404
    assert auth_client.get(detail(2**70)).status_code == 404


def test_list_shows_only_self(auth_client, user, other_user, django_assert_num_queries):
    auth_client.get("/api/v1/users/me")  # warm the authentication snapshot
    # count + page + audit row
    with django_assert_num_queries(3):
        response = auth_client.get("/api/v1/users")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert [row["id"] for row in body["results"]] == [user.pk]


def test_list_paginates_with_limit_and_skip(make_client, django_assert_num_queries):
    admin = AdminFactory()
    UserFactory.create_batch(7)
    client = make_client(admin)
    client.get("/api/v1/users/me")  # warm the authentication snapshot
    with django_assert_num_queries(3):
        first = client.get("/api/v1/users?limit=3").json()
    with django_assert_num_queries(3):
        second = client.get("/api/v1/users?limit=3&skip=3").json()
    with django_assert_num_queries(3):
        everyone = client.get("/api/v1/users?limit=500").json()
    assert len(everyone["results"]) == 8
    assert first["count"] == 8
    assert len(first["results"]) == 3 and len(second["results"]) == 3
    assert {r["id"] for r in first["results"]}.isdisjoint({r["id"] for r in second["results"]})
    assert first["next"] and first["previous"] is None


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "limit=x", "skip=-1"])
def test_list_bad_pagination_is_400(auth_client, query):
    response = auth_client.get(f"/api/v1/users?{query}")
    assert response.status_code == 400
    assert query.split("=")[0] in response.json()["errors"]


def test_admin_sees_everyone_with_phi(make_client, user):
    response = make_client(AdminFactory()).get(detail(user.pk))
    assert response.status_code == 200
    assert response.json()["medical_history"] == "Asthma since childhood."


def test_support_sees_accounts_but_not_phi(make_client, user):
    client = make_client(SupportFactory())
    response = client.get(detail(user.pk))
    assert response.status_code == 200
    assert response.json()["medical_history"] is None
    assert response.json()["date_of_birth"] is None
    assert response.json()["email"] == user.email


def test_clinician_sees_only_care_team_patients(make_client, user, other_user):
    clinician = ClinicianFactory()
    CareTeamMembershipFactory(patient=user, clinician=clinician)
    client = make_client(clinician)
    assert client.get(detail(user.pk)).json()["medical_history"] == "Asthma since childhood."
    assert client.get(detail(other_user.pk)).status_code == 404
    ids = [row["id"] for row in client.get("/api/v1/users").json()["results"]]
    assert sorted(ids) == sorted([clinician.pk, user.pk])


def test_clinician_cannot_change_patient_profile(make_client, user):
    clinician = ClinicianFactory()
    CareTeamMembershipFactory(patient=user, clinician=clinician)
    response = make_client(clinician).patch(detail(user.pk), {"first_name": "X"}, format="json")
    assert response.status_code == 404


def test_soft_delete_keeps_data_and_ends_tokens(auth_client, user):
    response = auth_client.delete(detail(user.pk))
    assert response.status_code == 204
    user.refresh_from_db()
    assert not user.is_active
    assert user.deactivated_at is not None
    assert user.profile.medical_history == "Asthma since childhood."
    assert auth_client.get(ME).status_code == 401
    refresh = auth_client.post(
        "/api/v1/auth/token/refresh", {"refresh": auth_client.tokens["refresh"]}, format="json"
    )
    assert refresh.status_code == 401


def test_delete_me_is_soft_delete(auth_client, user):
    assert auth_client.delete(ME).status_code == 204
    user.refresh_from_db()
    assert not user.is_active


def test_admin_can_soft_delete_someone(make_client, user):
    assert make_client(AdminFactory()).delete(detail(user.pk)).status_code == 204
    user.refresh_from_db()
    assert not user.is_active


def test_profile_reads_are_audited(auth_client, user):
    auth_client.get(ME)
    event = AuditEvent.objects.get()
    assert (event.action, event.resource_type, event.subject_id, event.actor_id) == (
        "read",
        "profile",
        user.pk,
        user.pk,
    )
    assert event.request_id and event.status == 200
