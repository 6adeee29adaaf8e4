import pytest

from goals.tests.factories import HealthGoalFactory, WeightLossGoalFactory
from healthtrack.cache import user_data_version
from users.tests.factories import AdminFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/goals/healthgoal/"


@pytest.fixture
def admin_client(client):
    client.force_login(AdminFactory(username="root"))
    return client


def test_changelist_filters_searches_and_shows_progress(admin_client, django_assert_max_num_queries):
    findme = UserFactory(username="findme", email="findme@example.com")
    WeightLossGoalFactory(user=findme, title="Findable goal", current_value=85)
    HealthGoalFactory(
        user=UserFactory(username="someone"), title="Other goal", status="abandoned", priority="low"
    )
    HealthGoalFactory.create_batch(10)

    page = admin_client.get(CHANGELIST + "?q=findme@example")
    assert page.status_code == 200
    assert b"Findable goal" in page.content and b"Other goal" not in page.content
    assert b"50.0" in page.content  # progress column

    for query, shown, hidden in [
        ("?status__exact=abandoned", b"Other goal", b"Findable goal"),
        ("?goal_type__exact=weight_loss", b"Findable goal", b"Other goal"),
        ("?priority__exact=low", b"Other goal", b"Findable goal"),
    ]:
        page = admin_client.get(CHANGELIST + query)
        assert shown in page.content and hidden not in page.content

    with django_assert_max_num_queries(10):  # users come with the rows (list_select_related)
        assert admin_client.get(CHANGELIST).status_code == 200


def test_what_a_goal_measures_is_read_only_on_change(admin_client):
    goal = WeightLossGoalFactory()
    html = admin_client.get(f"{CHANGELIST}{goal.pk}/change/").content.decode()
    for name in ("goal_type", "metric_type", "start_value", "unit", "current_value", "completed_at"):
        assert f'name="{name}"' not in html
    assert 'name="target_value"' in html and 'name="status"' in html


def test_admin_save_bumps_the_data_version(admin_client):
    goal = HealthGoalFactory()
    version = user_data_version(goal.user_id)
    form = {
        "title": "Edited",
        "description": "",
        "current_value": "3",
        "target_value": "10",
        "priority": "high",
        "status": "active",
        "target_date": "",
    }
    response = admin_client.post(f"{CHANGELIST}{goal.pk}/change/", form)
    assert response.status_code == 302, response.content
    goal.refresh_from_db()
    assert (goal.title, goal.priority, goal.current_value) == ("Edited", "high", 3)
    assert user_data_version(goal.user_id) != version
    assert goal.completed_at is None

    form["status"] = "completed"
    assert admin_client.post(f"{CHANGELIST}{goal.pk}/change/", form).status_code == 302
    goal.refresh_from_db()
    assert goal.status == "completed" and goal.completed_at is not None
