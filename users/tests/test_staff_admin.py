"""The accounts side of the admin for each staff role."""

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from healthtrack.models import AuditEvent
from users.models import CLINICIANS_GROUP, SUPPORT_GROUP, User
from users.tests.factories import (
    AdminFactory,
    CareTeamMembershipFactory,
    ClinicianFactory,
    SupportFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def patient():
    return UserFactory(username="patient_pat", profile__medical_history="Epilepsy, on levetiracetam")


@pytest.fixture
def stranger():
    return UserFactory(username="stranger_sam", profile__medical_history="Hidden condition")


@pytest.fixture
def clinician(patient):
    clinician = ClinicianFactory(username="dr_who")
    CareTeamMembershipFactory(patient=patient, clinician=clinician)
    return clinician


def logged_in(client, user):
    client.force_login(user)
    return client


def test_roles_exist_with_exact_permissions():
    clinicians = set(Group.objects.get(name=CLINICIANS_GROUP).permissions.values_list("codename", flat=True))
    support = set(Group.objects.get(name=SUPPORT_GROUP).permissions.values_list("codename", flat=True))
    assert clinicians == {
        "view_user", "view_profile", "view_healthmetric", "view_nutritionlog", "view_healthgoal",
        "view_healthinsight", "add_healthinsight", "change_healthinsight",
    }  # fmt: skip
    assert support == {"view_user", "change_user"}


def test_clinician_sees_only_care_team_patients(client, clinician, patient, stranger):
    page = logged_in(client, clinician).get("/admin/users/user/")
    assert page.status_code == 200
    assert b"patient_pat" in page.content
    assert b"stranger_sam" not in page.content
    search = client.get("/admin/users/user/?q=stranger")
    assert b"stranger_sam" not in search.content


def test_clinician_typing_another_patients_url_gets_nothing(client, clinician, stranger):
    logged_in(client, clinician)
    response = client.get(f"/admin/users/user/{stranger.pk}/change/", follow=True)
    assert b"Hidden condition" not in response.content
    assert b"stranger_sam" not in response.content
    assert client.get(f"/admin/users/user/{stranger.pk}/overview/").status_code == 404
    denied = AuditEvent.objects.filter(action="denied", subject=stranger, actor=clinician)
    assert denied.count() == 2


def test_clinician_sees_patient_profile_read_only(client, clinician, patient):
    page = logged_in(client, clinician).get(f"/admin/users/user/{patient.pk}/change/")
    assert page.status_code == 200
    assert b"Epilepsy, on levetiracetam" in page.content
    assert b'name="profile-0-medical_history"' not in page.content  # not editable
    assert b"Patient overview" in page.content
    event = AuditEvent.objects.get(actor=clinician, subject=patient)
    assert (event.action, event.resource_type) == ("read", "profile")


def test_support_sees_accounts_but_no_phi(client, patient):
    support = SupportFactory(username="helpdesk")
    logged_in(client, support)
    listing = client.get("/admin/users/user/")
    assert b"patient_pat" in listing.content
    page = client.get(f"/admin/users/user/{patient.pk}/change/")
    assert page.status_code == 200
    assert b"Epilepsy" not in page.content
    assert b"medical_history" not in page.content
    assert b"date_of_birth" not in page.content
    assert b"Patient overview" not in page.content
    assert client.get(f"/admin/users/user/{patient.pk}/overview/").status_code == 404
    index = client.get("/admin/").content.decode()
    for health_app in ("/admin/metrics/", "/admin/nutrition/", "/admin/goals/", "/admin/insights/"):
        assert health_app not in index


def test_support_cannot_grant_privileges_or_set_passwords(client, patient):
    logged_in(client, SupportFactory())
    page = client.get(f"/admin/users/user/{patient.pk}/change/")
    assert b'name="is_superuser"' not in page.content
    assert b'name="groups"' not in page.content
    assert b"Reset password" not in page.content
    assert client.get(f"/admin/users/user/{patient.pk}/password/").status_code == 403


def test_deactivate_action_ends_tokens_at_once(client, make_client, patient):
    api = make_client(patient)
    assert api.get("/api/v1/users/me").status_code == 200
    logged_in(client, SupportFactory())
    response = client.post(
        "/admin/users/user/", {"action": "deactivate_selected", "_selected_action": [patient.pk]}, follow=True
    )
    assert response.status_code == 200
    patient.refresh_from_db()
    assert not patient.is_active
    assert api.get("/api/v1/users/me").status_code == 401


def test_unticking_active_in_the_form_ends_tokens(client, make_client, patient):
    api = make_client(patient)
    admin = AdminFactory()
    logged_in(client, admin)
    page = client.get(f"/admin/users/user/{patient.pk}/change/")
    form = page.context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name != "is_active"}
    data.update(
        {
            "date_joined_0": patient.date_joined.strftime("%Y-%m-%d"),
            "date_joined_1": patient.date_joined.strftime("%H:%M:%S"),
            "groups": [],
            "user_permissions": [],
            "profile-TOTAL_FORMS": "1",
            "profile-INITIAL_FORMS": "1",
            "profile-MIN_NUM_FORMS": "0",
            "profile-MAX_NUM_FORMS": "1",
            "profile-0-user": patient.pk,
            "profile-0-timezone": "UTC",
            "profile-0-medical_history": "Epilepsy, on levetiracetam",
        }
    )
    data.pop("last_login", None)
    data.pop("date_joined", None)
    response = client.post(f"/admin/users/user/{patient.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    patient.refresh_from_db()
    assert not patient.is_active
    assert api.get("/api/v1/users/me").status_code == 401


def test_password_set_link_works_once_and_ends_sessions(client, make_client, patient):
    from django.conf import settings

    from users.services import user_password_set_link

    api = make_client(patient)
    link = user_password_set_link(user=patient, base_url=settings.PUBLIC_BASE_URL)
    path = link.removeprefix(settings.PUBLIC_BASE_URL)
    form_page = client.get(path, follow=True)
    assert form_page.status_code == 200
    set_url = form_page.redirect_chain[-1][0]
    done = client.post(
        set_url, {"new_password1": "Fresh-start-2026!", "new_password2": "Fresh-start-2026!"}, follow=True
    )
    assert b"Your password has been set" in done.content
    patient.refresh_from_db()
    assert patient.check_password("Fresh-start-2026!")
    assert api.get("/api/v1/users/me").status_code == 401
    again = client.get(path, follow=True)
    assert b"invalid" in again.content.lower()


def test_create_clinician_command_prints_a_working_link(capsys):
    call_command("create_clinician", "doc@example.com", "--first-name", "Dana")
    out = capsys.readouterr().out
    user = User.objects.get(email="doc@example.com")
    assert user.is_staff and not user.is_superuser
    assert list(user.groups.values_list("name", flat=True)) == [CLINICIANS_GROUP]
    assert not user.has_usable_password()
    assert "/admin/password-set/" in out


def test_create_support_command(capsys):
    call_command("create_clinician", "help@example.com", "--support")
    assert list(User.objects.get(email="help@example.com").groups.values_list("name", flat=True)) == [
        SUPPORT_GROUP
    ]


def test_create_clinician_refuses_duplicates_and_bad_email():
    from django.core.management.base import CommandError

    UserFactory(email="taken@example.com")
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_clinician", "taken@example.com")
    with pytest.raises(CommandError, match="not a valid email"):
        call_command("create_clinician", "not-an-email")
