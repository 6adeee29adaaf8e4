import datetime

import pytest

from insights.models import HealthInsight
from users.tests.factories import AdminFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/insights/healthinsight/"


@pytest.fixture
def admin_client(client):
    client.force_login(AdminFactory(username="root"))
    return client


def _insight(user, **values):
    values.setdefault("title", "An insight")
    values.setdefault("insight_date", datetime.date(2026, 3, 1))
    return HealthInsight.objects.create(user=user, **values)


def test_changelist_filters_and_searches(admin_client):
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    _insight(alice, code="low_steps", severity="high", title="Walk-more-please")
    _insight(bob, code="insufficient_sleep", severity="low", is_read=True, title="Sleep-more-please")

    by_user = admin_client.get(f"{CHANGELIST}?q=alice")
    assert by_user.status_code == 200
    assert b"Walk-more-please" in by_user.content and b"Sleep-more-please" not in by_user.content
    high = admin_client.get(f"{CHANGELIST}?severity__exact=high")
    assert b"Walk-more-please" in high.content and b"Sleep-more-please" not in high.content
    read = admin_client.get(f"{CHANGELIST}?is_read__exact=1")
    assert b"Sleep-more-please" in read.content and b"Walk-more-please" not in read.content
    by_code = admin_client.get(f"{CHANGELIST}?code__exact=insufficient_sleep")
    assert b"Sleep-more-please" in by_code.content and b"Walk-more-please" not in by_code.content


def test_changelist_query_count_does_not_grow_with_rows(admin_client, django_assert_max_num_queries):
    people = [UserFactory() for _ in range(3)]
    for person in people:
        _insight(person, code="low_steps", created_by=AdminFactory())
    admin_client.get(CHANGELIST)
    with django_assert_max_num_queries(12) as few:
        admin_client.get(CHANGELIST)
    for person in [UserFactory() for _ in range(20)]:
        _insight(person, code="low_steps", created_by=AdminFactory())
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert admin_client.get(CHANGELIST).status_code == 200


def test_add_page_looks_up_the_person_with_autocomplete(admin_client):
    page = admin_client.get(f"{CHANGELIST}add/")
    assert page.status_code == 200
    assert b"admin-autocomplete" in page.content


def test_change_page_keeps_what_the_insight_said_read_only(admin_client):
    insight = _insight(UserFactory(), code="low_steps")
    page = admin_client.get(f"{CHANGELIST}{insight.pk}/change/")
    assert page.status_code == 200
    assert b'name="is_read"' in page.content
    assert b'name="title"' not in page.content and b'name="user"' not in page.content
