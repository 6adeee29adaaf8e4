import pytest

from users.tests.factories import AdminFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(AdminFactory(username="root"))
    return client


def test_user_changelist_searches_and_filters(admin_client):
    UserFactory(username="findme", email="findme@example.com")
    UserFactory(username="inactive_one", is_active=False)

    page = admin_client.get("/admin/users/user/?q=findme@example")
    assert page.status_code == 200
    assert b"findme" in page.content and b"inactive_one" not in page.content

    inactive = admin_client.get("/admin/users/user/?is_active__exact=0")
    assert b"inactive_one" in inactive.content and b"findme" not in inactive.content

    staff = admin_client.get("/admin/users/user/?is_staff__exact=1")
    assert b"root" in staff.content and b"findme" not in staff.content


def test_user_change_page_shows_profile_inline(admin_client):
    user = UserFactory(profile__occupation="Lighthouse keeper", profile__timezone="Europe/Oslo")
    page = admin_client.get(f"/admin/users/user/{user.pk}/change/")
    assert page.status_code == 200
    assert b"Lighthouse keeper" in page.content
    assert b"Europe/Oslo" in page.content


# --- Changes in the admin end or narrow access at once -------------------------------

ME = "/api/v1/users/me"


def change_form_data(user, **overrides):
    """The admin change form for ``user`` as a browser would submit it unchanged."""
    profile = user.profile
    data = {
        "username": user.username,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "groups": [group.pk for group in user.groups.all()],
        "profile-TOTAL_FORMS": "1",
        "profile-INITIAL_FORMS": "1",
        "profile-MIN_NUM_FORMS": "0",
        "profile-MAX_NUM_FORMS": "1",
        "profile-0-user": str(user.pk),
        "profile-0-date_of_birth": profile.date_of_birth.isoformat() if profile.date_of_birth else "",
        "profile-0-gender": profile.gender,
        "profile-0-height_cm": "" if profile.height_cm is None else str(profile.height_cm),
        "profile-0-occupation": profile.occupation,
        "profile-0-timezone": profile.timezone,
        "profile-0-medical_history": profile.medical_history or "",
        "_save": "Save",
    }
    for flag in ("is_active", "is_staff", "is_superuser"):
        if getattr(user, flag):
            data[flag] = "on"
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def submit(admin_client, user, **overrides):
    response = admin_client.post(f"/admin/users/user/{user.pk}/change/", change_form_data(user, **overrides))
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    return response


def test_unticking_active_in_the_admin_ends_tokens_at_once(admin_client, make_client):
    user = UserFactory()
    client = make_client(user)
    assert client.get(ME).status_code == 200  # the snapshot is now cached

    submit(admin_client, user, is_active=None)

    user.refresh_from_db()
    assert not user.is_active and user.deactivated_at is not None
    assert client.get(ME).status_code == 401
    refresh = client.post("/api/v1/auth/token/refresh", {"refresh": client.tokens["refresh"]}, format="json")
    assert refresh.status_code == 401
    # The profile was saved unchanged, still encrypted and readable.
    assert user.profile.medical_history == "Asthma since childhood."


def test_reticking_active_in_the_admin_reactivates(admin_client, make_client):
    from users.services import user_deactivate

    user = UserFactory()
    user_deactivate(user_id=user.pk)
    user.refresh_from_db()
    submit(admin_client, user, is_active="on")
    user.refresh_from_db()
    assert user.is_active and user.deactivated_at is None
    assert make_client(user).get(ME).status_code == 200


def test_saving_other_fields_in_the_admin_keeps_sessions(admin_client, make_client):
    user = UserFactory()
    client = make_client(user)
    submit(admin_client, user, first_name="Renamed")
    assert client.get(ME).json()["first_name"] == "Renamed"


def test_removing_the_clinician_role_in_the_admin_ends_patient_access_at_once(admin_client, make_client):
    from users.tests.factories import CareTeamMembershipFactory, ClinicianFactory

    patient = UserFactory()
    clinician = ClinicianFactory()
    CareTeamMembershipFactory(patient=patient, clinician=clinician)
    client = make_client(clinician)
    assert client.get(f"/api/v1/users/{patient.pk}").json()["medical_history"] == "Asthma since childhood."

    submit(admin_client, clinician, groups=[])

    # Still staff, so an account manager now: the account, never the PHI.
    response = client.get(f"/api/v1/users/{patient.pk}")
    assert response.json()["medical_history"] is None
    assert response.json()["date_of_birth"] is None


def test_demoting_a_superuser_in_the_admin_takes_effect_at_once(admin_client, make_client):
    boss = AdminFactory()
    someone = UserFactory()
    client = make_client(boss)
    assert client.get(f"/api/v1/users/{someone.pk}").status_code == 200
    submit(admin_client, boss, is_superuser=None, is_staff=None)
    assert client.get(f"/api/v1/users/{someone.pk}").status_code == 404


def test_password_set_in_the_admin_ends_every_session(admin_client, make_client):
    user = UserFactory()
    client = make_client(user)
    response = admin_client.post(
        f"/admin/users/user/{user.pk}/password/",
        {"password1": "a-Brand-new-one-77", "password2": "a-Brand-new-one-77", "set_usable_password": "true"},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("a-Brand-new-one-77")
    assert client.get(ME).status_code == 401
    refresh = client.post("/api/v1/auth/token/refresh", {"refresh": client.tokens["refresh"]}, format="json")
    assert refresh.status_code == 401


def test_deactivate_action(admin_client, make_client):
    user = UserFactory()
    client = make_client(user)
    response = admin_client.post(
        "/admin/users/user/", {"action": "deactivate_selected", "_selected_action": [user.pk]}
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert not user.is_active
    assert client.get(ME).status_code == 401


def test_deleting_in_the_admin_ends_tokens(admin_client, make_client):
    user = UserFactory()
    client = make_client(user)
    assert client.get(ME).status_code == 200
    response = admin_client.post(f"/admin/users/user/{user.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert client.get(ME).status_code == 401
