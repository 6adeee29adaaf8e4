import datetime

import pytest
from django.utils import timezone

from healthtrack.cache import user_data_version
from nutrition.models import NutritionLog
from nutrition.tests.factories import NutritionLogFactory, WaterLogFactory
from users.tests.factories import AdminFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/nutrition/nutritionlog/"


@pytest.fixture
def admin_client(client):
    client.force_login(AdminFactory(username="root"))
    return client


def test_changelist_filters_and_searches_by_user(admin_client, django_assert_max_num_queries):
    findme = UserFactory(username="findme", email="findme@example.com")
    NutritionLogFactory(user=findme, description="Findable soup")
    WaterLogFactory(user=UserFactory(username="someone"), description="Plain water")
    NutritionLogFactory.create_batch(10)

    page = admin_client.get(CHANGELIST + "?q=findme@example")
    assert page.status_code == 200
    assert b"findme" in page.content and b"someone" not in page.content

    water = admin_client.get(CHANGELIST + "?meal_type__exact=water")
    assert b"someone" in water.content and b"findme" not in water.content

    assert admin_client.get(CHANGELIST + "?source__exact=manual").status_code == 200
    year = timezone.now().year
    assert admin_client.get(CHANGELIST + f"?logged_at__year={year}").status_code == 200

    with django_assert_max_num_queries(10):  # users come with the rows (list_select_related)
        assert admin_client.get(CHANGELIST).status_code == 200


def test_history_fields_are_read_only_on_change(admin_client):
    log = NutritionLogFactory(source="apple_health", external_id="hk-1")
    page = admin_client.get(f"{CHANGELIST}{log.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    for name in ("logged_at", "source", "external_id"):
        assert f'name="{name}"' not in html
    assert 'name="calories"' in html


def test_admin_edit_follows_the_api_rules_and_bumps_the_version(admin_client):
    log = NutritionLogFactory()
    version = user_data_version(log.user_id)
    form = {"user": log.user_id, "meal_type": "lunch", "description": "", "calories": "20000"}
    page = admin_client.post(f"{CHANGELIST}{log.pk}/change/", form)
    assert page.status_code == 200  # the form again, with the error
    assert b"Must be between 0 and 10,000 kcal per entry." in page.content
    log.refresh_from_db()
    assert log.calories == 550

    form["calories"] = "480"
    assert admin_client.post(f"{CHANGELIST}{log.pk}/change/", form).status_code == 302
    log.refresh_from_db()
    assert log.calories == 480
    assert user_data_version(log.user_id) != version


def test_admin_add_sets_history_fields(admin_client):
    user = UserFactory()
    at = timezone.now() - datetime.timedelta(hours=2)
    form = {
        "user": user.pk,
        "meal_type": "water",
        "water_ml": "300",
        "logged_at_0": at.strftime("%Y-%m-%d"),
        "logged_at_1": at.strftime("%H:%M:%S"),
        "source": "manual",
        "external_id": "",
    }
    response = admin_client.post(CHANGELIST + "add/", form)
    assert response.status_code == 302, response.content
    log = NutritionLog.objects.get()
    assert (log.water_ml, log.external_id) == (300, None)
