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
