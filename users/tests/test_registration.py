import pytest
from django.contrib.auth.hashers import identify_hasher

from users.models import Profile, User
from users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/users/register"
GOOD = {
    "email": "Grace@Example.com",
    "username": "grace",
    "password": "plum-Tree-47-orbit",
    "first_name": "Grace",
    "last_name": "Hopper",
    "date_of_birth": "1985-12-09",
    "gender": "female",
    "height_cm": 165.5,
    "occupation": "Admiral",
    "medical_history": "Penicillin allergy.",
    "timezone": "America/New_York",
}


def test_register_returns_profile_without_password(api_client):
    response = api_client.post(URL, GOOD, format="json")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {
        "id", "email", "username", "first_name", "last_name", "date_of_birth", "gender",
        "height_cm", "occupation", "medical_history", "timezone", "date_joined",
    }  # fmt: skip
    assert body["username"] == "grace"
    assert body["email"] == "Grace@example.com"  # domain normalised
    assert body["timezone"] == "America/New_York"
    assert body["medical_history"] == "Penicillin allergy."
    user = User.objects.get(username="grace")
    assert user.check_password(GOOD["password"])
    assert user.profile.date_of_birth.isoformat() == "1985-12-09"
    assert not user.is_staff


def test_register_defaults_timezone_to_utc(api_client):
    response = api_client.post(
        URL, {"email": "a@b.co", "username": "minimal", "password": GOOD["password"]}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["timezone"] == "UTC"
    assert Profile.objects.get(user__username="minimal").timezone == "UTC"


def test_register_hashes_with_argon2(api_client, settings):
    from healthtrack import settings as project_settings

    settings.PASSWORD_HASHERS = project_settings.PASSWORD_HASHERS  # the production list
    assert "Argon2" in settings.PASSWORD_HASHERS[0]
    api_client.post(URL, GOOD, format="json")
    encoded = User.objects.get(username="grace").password
    assert identify_hasher(encoded).algorithm == "argon2"
    assert encoded.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$")  # OWASP's minimum


def test_older_argon2_and_pbkdf2_hashes_still_verify_and_are_upgraded(settings):
    from django.contrib.auth.hashers import Argon2PasswordHasher, PBKDF2PasswordHasher, make_password

    from healthtrack.hashers import OwaspArgon2PasswordHasher

    settings.PASSWORD_HASHERS = [
        "healthtrack.hashers.OwaspArgon2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]
    for old in (Argon2PasswordHasher(), PBKDF2PasswordHasher()):
        user = UserFactory(password="unused-Password-1")
        user.password = make_password("old-Password-42", hasher=old)
        user.save(update_fields=["password"])
        assert user.check_password("old-Password-42")  # verifies, and re-hashes
        user.refresh_from_db()
        assert not OwaspArgon2PasswordHasher().must_update(user.password)


@pytest.mark.parametrize(
    ("field", "value"),
    [("email", "GRACE@example.COM"), ("username", "GRACE")],
)
def test_register_taken_email_or_username_case_insensitive(api_client, field, value):
    UserFactory(username="grace", email="grace@example.com")
    distinct = {"email": "someone-else@example.com", "username": "someone_else"}
    response = api_client.post(URL, {**GOOD, **distinct, field: value}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert list(body["errors"]) == [field]
    assert "already exists" in body["errors"][field][0]
    assert body["code"] == "invalid"
    assert User.objects.count() == 1


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short1!", "too short"),
        ("password123", "too common"),
        ("83749201837465", "entirely numeric"),
        ("grace@example.com", "too similar"),
    ],
)
def test_register_weak_password_gives_reasons(api_client, password, reason):
    response = api_client.post(URL, {**GOOD, "password": password}, format="json")
    assert response.status_code == 400
    assert "password" in response.json()["errors"]
    assert any(reason in message for message in response.json()["errors"]["password"])
    assert not User.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "not-an-email"),
        ("username", "has@sign"),
        ("username", "ab"),
        ("timezone", "Mars/Olympus_Mons"),
        ("gender", "robot"),
        ("height_cm", 12),
        ("height_cm", "tall"),
        ("date_of_birth", "2999-01-01"),
        ("date_of_birth", "yesterday"),
    ],
)
def test_register_invalid_field_is_named(api_client, field, value):
    response = api_client.post(URL, {**GOOD, field: value}, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert response.json()["detail"].startswith(field)
    assert not User.objects.exists()


@pytest.mark.parametrize("field", ["email", "username", "password"])
def test_register_missing_required_field(api_client, field):
    body = {k: v for k, v in GOOD.items() if k != field}
    response = api_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][field] == ["This field is required."]


@pytest.mark.parametrize("field", ["is_staff", "is_superuser", "is_active", "id", "date_joined"])
def test_register_cannot_set_privileged_fields(api_client, field):
    response = api_client.post(URL, {**GOOD, field: True}, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not User.objects.exists()


def test_register_is_audited(api_client):
    from healthtrack.models import AuditEvent

    api_client.post(URL, GOOD, format="json")
    event = AuditEvent.objects.get()
    assert (event.action, event.resource_type, event.status) == ("create", "profile", 201)
    assert event.subject_id == event.actor_id == User.objects.get().pk
