import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from healthtrack.cache import user_data_version
from metrics.models import HealthMetric
from metrics.tests.factories import BloodPressureFactory, HealthMetricFactory
from users.tests.factories import AdminFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/metrics/healthmetric/"


@pytest.fixture
def staff_client(client):
    client.force_login(AdminFactory(username="root"))
    return client


def change_url(metric):
    return f"{CHANGELIST}{metric.pk}/change/"


def test_changelist_filters_and_searches(staff_client):
    ada = UserFactory(username="ada", email="ada@example.com")
    bob = UserFactory(username="bob", email="bob@example.com")
    BloodPressureFactory(user=ada, value=121, source="withings", external_id="w-77")
    HealthMetricFactory.create_batch(5, user=bob, metric_type="steps", value=4321)

    page = staff_client.get(CHANGELIST)
    assert page.status_code == 200
    assert b"121/80 mmHg" in page.content and b"4321 count" in page.content

    by_email = staff_client.get(CHANGELIST, {"q": "ada@example"})
    assert b"121/80" in by_email.content and b"4321" not in by_email.content
    by_username = staff_client.get(CHANGELIST, {"q": "bob"})
    assert b"4321" in by_username.content and b"121/80" not in by_username.content
    by_external_id = staff_client.get(CHANGELIST, {"q": "w-77"})
    assert b"121/80" in by_external_id.content

    by_type = staff_client.get(CHANGELIST, {"metric_type__exact": "blood_pressure"})
    assert b"121/80" in by_type.content and b"4321" not in by_type.content
    by_source = staff_client.get(CHANGELIST, {"source__exact": "withings"})
    assert b"121/80" in by_source.content and b"4321" not in by_source.content
    today = timezone.now() - datetime.timedelta(hours=1)
    by_day = staff_client.get(
        CHANGELIST,
        {"recorded_at__year": today.year, "recorded_at__month": today.month, "recorded_at__day": today.day},
    )
    assert by_day.status_code == 200

    # Owners come with the rows (list_select_related): the query count does not grow.
    with CaptureQueriesContext(connection) as few:
        staff_client.get(CHANGELIST)
    for _ in range(20):
        HealthMetricFactory(user=UserFactory())
    with CaptureQueriesContext(connection) as many:
        staff_client.get(CHANGELIST)
    assert len(many) == len(few)


def test_change_page_keeps_identity_read_only(staff_client, user):
    metric = HealthMetricFactory(user=user, source="apple_health", external_id="HK-1")
    page = staff_client.get(change_url(metric))
    assert page.status_code == 200
    content = page.content.decode()
    for field in ("recorded_at", "source", "external_id", "created_at", "user"):
        assert f'name="{field}"' not in content, field
    assert 'name="value"' in content and 'name="metric_type"' in content


def test_edit_in_admin_is_validated_converted_and_invalidates(staff_client, user):
    metric = HealthMetricFactory(user=user, metric_type="weight", value=80)
    version = user_data_version(user.pk)
    form = {"metric_type": "weight", "value": "176.37", "secondary_value": "", "unit": "lb", "notes": "scale"}

    response = staff_client.post(change_url(metric), form)
    assert response.status_code == 302
    metric.refresh_from_db()
    assert metric.value == pytest.approx(80.0, abs=0.001) and metric.unit == "kg" and metric.notes == "scale"
    assert user_data_version(user.pk) != version

    too_heavy = staff_client.post(change_url(metric), {**form, "value": "2000", "unit": "kg"})
    assert too_heavy.status_code == 200
    assert "weight must be between 2 and 500 kg" in too_heavy.content.decode()
    metric.refresh_from_db()
    assert metric.value == pytest.approx(80.0, abs=0.001)


def test_add_in_admin_uses_the_same_rules(staff_client, user):
    now = timezone.now() - datetime.timedelta(minutes=1)
    form = {
        "user": user.pk, "metric_type": "body_temperature", "value": "98.6", "secondary_value": "",
        "unit": "°F", "recorded_at_0": now.strftime("%Y-%m-%d"), "recorded_at_1": now.strftime("%H:%M:%S"),
        "source": "manual", "external_id": "", "notes": "",
    }  # fmt: skip
    response = staff_client.post(f"{CHANGELIST}add/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    stored = HealthMetric.objects.get()
    assert (stored.value, stored.unit, stored.external_id) == (pytest.approx(37.0), "°C", None)

    bad = staff_client.post(f"{CHANGELIST}add/", {**form, "metric_type": "blood_pressure", "unit": ""})
    assert bad.status_code == 200
    assert "Required for blood_pressure" in bad.content.decode()
    assert HealthMetric.objects.count() == 1


def test_delete_in_admin_invalidates(staff_client, user):
    metric = HealthMetricFactory(user=user)
    other = HealthMetricFactory()
    version = user_data_version(user.pk)
    response = staff_client.post(
        CHANGELIST, {"action": "delete_selected", "_selected_action": [metric.pk, other.pk], "post": "yes"}
    )
    assert response.status_code == 302
    assert not HealthMetric.objects.exists()
    assert user_data_version(user.pk) != version
