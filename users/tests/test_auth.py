import pytest
from rest_framework.test import APIClient

from healthtrack.models import AuditEvent
from users.tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/auth/token"
REFRESH = "/api/v1/auth/token/refresh"
LOGOUT = "/api/v1/auth/logout"
PASSWORD = "/api/v1/auth/password"
ME = "/api/v1/users/me"


def login(client, username, password=DEFAULT_PASSWORD):
    return client.post(TOKEN, {"username": username, "password": password}, format="json")


def bearer(access):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


@pytest.mark.parametrize("login_as", ["ada", "ADA", "ada@example.com", "Ada@Example.COM"])
def test_login_with_username_or_email(api_client, login_as):
    UserFactory(username="ada", email="ada@example.com")
    response = login(api_client, login_as)
    assert response.status_code == 200
    assert set(response.json()) == {"access", "refresh"}
    assert bearer(response.json()["access"]).get(ME).json()["username"] == "ada"


def test_login_wrong_password_is_401_and_audited(api_client):
    user = UserFactory(username="ada")
    response = login(api_client, "ada", "wrong-password")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"
    event = AuditEvent.objects.get()
    assert (event.action, event.subject_id, event.actor_id) == ("login_failed", user.pk, None)


def test_login_unknown_user_is_401(api_client):
    response = login(api_client, "nobody")
    assert response.status_code == 401
    assert AuditEvent.objects.get().action == "login_failed"


def test_login_inactive_user_is_401(api_client):
    UserFactory(username="gone", is_active=False)
    assert login(api_client, "gone").status_code == 401


def test_login_missing_fields_is_400(api_client):
    response = api_client.post(TOKEN, {"username": "x"}, format="json")
    assert response.status_code == 400
    assert "password" in response.json()["errors"]


def test_successful_login_is_audited(api_client):
    user = UserFactory(username="ada")
    login(api_client, "ada")
    event = AuditEvent.objects.get()
    assert (event.action, event.actor_id, event.subject_id) == ("login", user.pk, user.pk)


def test_access_token_lifetime_from_setting(api_client, settings):
    from rest_framework_simplejwt.tokens import AccessToken

    UserFactory(username="ada")
    access = AccessToken(login(api_client, "ada").json()["access"])
    assert access["exp"] - access["iat"] == 30 * 60


def test_refresh_rotates_and_old_refresh_is_refused(api_client):
    UserFactory(username="ada")
    first = login(api_client, "ada").json()

    rotated = api_client.post(REFRESH, {"refresh": first["refresh"]}, format="json")
    assert rotated.status_code == 200
    pair = rotated.json()
    assert set(pair) == {"access", "refresh"}
    assert pair["refresh"] != first["refresh"]
    assert bearer(pair["access"]).get(ME).status_code == 200

    reused = api_client.post(REFRESH, {"refresh": first["refresh"]}, format="json")
    assert reused.status_code == 401
    assert reused.json()["code"] == "token_not_valid"
    # The rotated token still works once.
    assert api_client.post(REFRESH, {"refresh": pair["refresh"]}, format="json").status_code == 200


def test_refresh_with_garbage_is_401(api_client):
    response = api_client.post(REFRESH, {"refresh": "not-a-token"}, format="json")
    assert response.status_code == 401


def test_access_token_cannot_be_used_as_refresh(api_client):
    UserFactory(username="ada")
    pair = login(api_client, "ada").json()
    assert api_client.post(REFRESH, {"refresh": pair["access"]}, format="json").status_code == 401


def test_logout_ends_access_and_refresh_tokens(api_client):
    UserFactory(username="ada")
    pair = login(api_client, "ada").json()
    client = bearer(pair["access"])
    assert client.get(ME).status_code == 200

    response = client.post(LOGOUT, {"refresh": pair["refresh"]}, format="json")
    assert response.status_code == 204

    assert client.get(ME).status_code == 401
    assert api_client.post(REFRESH, {"refresh": pair["refresh"]}, format="json").status_code == 401


def test_logout_keeps_other_sessions(api_client):
    UserFactory(username="ada")
    phone = login(api_client, "ada").json()
    laptop = login(api_client, "ada").json()
    bearer(phone["access"]).post(LOGOUT, {"refresh": phone["refresh"]}, format="json")
    assert bearer(phone["access"]).get(ME).status_code == 401
    assert bearer(laptop["access"]).get(ME).status_code == 200


def test_logout_ends_access_tokens_issued_by_rotation(api_client):
    UserFactory(username="ada")
    first = login(api_client, "ada").json()
    second = api_client.post(REFRESH, {"refresh": first["refresh"]}, format="json").json()
    api_client.post(LOGOUT, {"refresh": second["refresh"]}, format="json")
    assert bearer(first["access"]).get(ME).status_code == 401
    assert bearer(second["access"]).get(ME).status_code == 401


def test_password_change_ends_every_session(api_client):
    user = UserFactory(username="ada")
    phone = login(api_client, "ada").json()
    response = bearer(phone["access"]).post(
        PASSWORD, {"old_password": DEFAULT_PASSWORD, "new_password": "a-Much-better-one-42"}, format="json"
    )
    assert response.status_code == 200
    fresh = response.json()

    assert bearer(phone["access"]).get(ME).status_code == 401
    assert api_client.post(REFRESH, {"refresh": phone["refresh"]}, format="json").status_code == 401
    assert bearer(fresh["access"]).get(ME).status_code == 200
    user.refresh_from_db()
    assert user.check_password("a-Much-better-one-42")
    assert login(api_client, "ada").status_code == 401


def test_password_change_needs_the_old_password(auth_client, user):
    response = auth_client.post(
        PASSWORD, {"old_password": "wrong", "new_password": "a-Much-better-one-42"}, format="json"
    )
    assert response.status_code == 400
    assert "old_password" in response.json()["errors"]
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)


def test_password_change_validates_new_password(auth_client):
    response = auth_client.post(
        PASSWORD, {"old_password": DEFAULT_PASSWORD, "new_password": "123"}, format="json"
    )
    assert response.status_code == 400
    assert "new_password" in response.json()["errors"]


@pytest.mark.parametrize(
    "header",
    [
        "Bearer not.a.jwt",
        "Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJ0b2tlbl90eXBlIjoiYWNjZXNzIiwidXNlcl9pZCI6IjEifQ.",
        "Token abc",
    ],
)
def test_bad_tokens_are_401(header, user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get(ME)
    assert response.status_code == 401
    assert response.json()["code"]


def test_tampered_token_is_401(auth_client, user):
    access = auth_client.tokens["access"]
    header, payload, signature = access.split(".")
    tampered = f"{header}.{payload}.{signature[:-2]}AA"
    assert bearer(tampered).get(ME).status_code == 401


def test_expired_token_is_401(user):
    from datetime import timedelta

    from rest_framework_simplejwt.tokens import AccessToken

    token = AccessToken()
    token["user_id"] = str(user.pk)
    token["epoch"] = user.auth_epoch
    token.set_exp(lifetime=timedelta(seconds=-60))
    assert bearer(str(token)).get(ME).status_code == 401


def test_logging_out_someone_elses_refresh_token_does_not_revoke_your_session(api_client):
    UserFactory(username="ada")
    UserFactory(username="bob")
    ada = login(api_client, "ada").json()
    bob = login(api_client, "bob").json()
    response = bearer(ada["access"]).post(LOGOUT, {"refresh": bob["refresh"]}, format="json")
    assert response.status_code == 204
    assert bearer(ada["access"]).get(ME).status_code == 200  # Ada's session goes on
    assert bearer(bob["access"]).get(ME).status_code == 401  # Bob's session ended
