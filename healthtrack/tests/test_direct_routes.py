"""Plain requests on one's own data answered before DRF (``healthtrack.cached_reads.
DirectRoute``): the metric list and the metric POST give the view's answer, or the view
answers."""

from __future__ import annotations

import datetime
import logging
from unittest import mock

import pytest
from django.core.cache import caches

from healthtrack.cache import ResilientRedisCache
from healthtrack.observability import requests_by_view
from healthtrack.tests.early_answers import cache_round_trips, calls_reaching, comparable, last_audit_row
from metrics.models import HealthMetric
from metrics.tests.factories import BloodPressureFactory, HealthMetricFactory
from metrics.views import MetricCreateView, MetricUserListView
from users.tests.factories import CareTeamMembershipFactory, ClinicianFactory

pytestmark = pytest.mark.django_db

LIST = "/api/v1/health-metrics/user/{id}"
BASE = datetime.datetime(2026, 3, 10, 12, 0, tzinfo=datetime.UTC)


@pytest.fixture
def person(user, other_user):
    HealthMetricFactory(user=other_user, recorded_at=BASE)  # never listed for user
    for hour in range(6):
        recorded_at = BASE + datetime.timedelta(hours=hour)
        HealthMetricFactory(user=user, metric_type="steps", value=100 * hour, recorded_at=recorded_at)
    HealthMetricFactory(user=user, metric_type="heart_rate", value=61.5, recorded_at=BASE, notes='a "note" é')
    BloodPressureFactory(user=user, value=125, recorded_at=BASE, source="withings", external_id="w-1")
    return user


@pytest.fixture
def view_calls(auth_client):
    """Calls that reached the list view's ``get`` (none when the middleware answered).

    The person's authentication snapshot is cached first, as any earlier request of
    theirs does: without it the middleware leaves the request to DRF."""
    assert auth_client.get("/api/v1/users/me").status_code == 200
    with calls_reaching(MetricUserListView, "get") as calls:
        yield calls


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?limit=3",
        "?limit=3&skip=3",
        "?skip=0",
        "?limit=500&skip=7",
        "?skip=100",  # past the end: an empty page that still counts
        "?metric_type=steps&limit=2&skip=1",
        "?metric_type=blood_pressure",
        "?metric_type=weight",  # nothing of that type
    ],
)
def test_the_direct_answer_is_the_views(settings, person, auth_client, view_calls, query):
    url = LIST.format(id=person.pk) + query

    settings.DIRECT_ROUTES_ENABLED = False
    through_view = auth_client.get(url)
    view_row = last_audit_row()
    assert len(view_calls) == 1

    settings.DIRECT_ROUTES_ENABLED = True
    direct = auth_client.get(url)
    direct_row = last_audit_row()
    assert len(view_calls) == 1, "the middleware answered"

    assert through_view.status_code == 200
    assert comparable(direct) == comparable(through_view)
    assert direct_row == view_row
    assert direct_row["actor_id"] == person.pk and direct_row["action"] == "read"


def test_the_page_and_its_links(person, auth_client, view_calls):
    body = auth_client.get(LIST.format(id=person.pk) + "?limit=3&skip=3").json()
    assert (body["count"], body["limit"], body["skip"]) == (8, 3, 3)
    assert body["next"].endswith(f"/api/v1/health-metrics/user/{person.pk}?limit=3&skip=6")
    assert body["previous"].endswith(f"/api/v1/health-metrics/user/{person.pk}?limit=3")
    assert [row["value"] for row in body["results"]] == [200.0, 100.0, 125.0]
    assert view_calls == []


@pytest.mark.parametrize(
    "query",
    [
        "?limit=0",
        "?limit=501",
        "?limit=05",
        "?limit=abc",
        "?skip=-1",
        "?limit=3&limit=4",
        "?metric_type=unknown",
        "?since=2026-03-10T00:00:00Z",
        "?until=2026-03-10T00:00:00Z",
        "?format=json",
    ],
)
def test_queries_not_in_plain_form_go_to_the_view(person, auth_client, view_calls, query):
    response = auth_client.get(LIST.format(id=person.pk) + query)
    assert len(view_calls) == 1
    if query in ("?limit=0", "?limit=501", "?limit=abc", "?skip=-1", "?metric_type=unknown"):
        assert response.status_code == 400
        assert response.json()["errors"].keys() <= {"limit", "skip", "metric_type"}
    else:
        assert response.status_code == 200


def test_someone_elses_samples_are_left_to_the_views_authorization(person, other_client, view_calls):
    response = other_client.get(LIST.format(id=person.pk))
    assert response.status_code == 404
    assert len(view_calls) == 1
    assert last_audit_row()["action"] == "denied"


def test_a_clinician_on_the_care_team_is_answered_by_the_view(person, make_client, view_calls):
    clinician = ClinicianFactory()
    CareTeamMembershipFactory(patient=person, clinician=clinician)
    response = make_client(clinician).get(LIST.format(id=person.pk))
    assert response.status_code == 200 and response.json()["count"] == 8
    assert len(view_calls) == 1
    assert last_audit_row()["actor_id"] == clinician.pk


@pytest.mark.parametrize("path", ["/api/v1/health-metrics/user/0{id}", "/api/v1/health-metrics/user/{id}/"])
def test_other_spellings_of_the_path(person, auth_client, view_calls, path):
    response = auth_client.get(path.format(id=person.pk))
    if path.endswith("/"):  # the trailing slash is optional: answered directly
        assert response.status_code == 200 and view_calls == []
    else:  # a leading zero is the view's to judge
        assert len(view_calls) == 1


def test_a_deactivated_account_and_a_bad_token_are_refused(person, auth_client, view_calls):
    from users.services import user_deactivate

    url = LIST.format(id=person.pk)
    assert auth_client.get(url).status_code == 200
    auth_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    assert auth_client.get(url).status_code == 401
    auth_client.credentials(HTTP_AUTHORIZATION=f"Bearer {auth_client.tokens['access']}")
    user_deactivate(user_id=person.pk)
    response = auth_client.get(url)
    assert response.status_code == 401 and response.json()["code"] == "user_inactive"


def test_only_json_is_answered_directly(person, auth_client, view_calls):
    response = auth_client.get(LIST.format(id=person.pk), HTTP_ACCEPT="text/html")
    assert response.status_code == 406  # DRF's content negotiation refused it


def test_the_request_log_and_metrics_name_the_caller_and_the_view(person, auth_client, view_calls, caplog):
    before = requests_by_view.labels("metric-user-list", "http", "GET")._value.get()
    with caplog.at_level(logging.INFO, logger="healthtrack.request"):
        assert auth_client.get(LIST.format(id=person.pk)).status_code == 200
    assert view_calls == []
    assert requests_by_view.labels("metric-user-list", "http", "GET")._value.get() == before + 1
    (line,) = [record for record in caplog.records if record.name == "healthtrack.request"]
    assert line.user_id == person.pk and line.status == 200


def test_rate_limits_count_it_once(settings, person, auth_client, view_calls):
    settings.RATE_LIMIT_ENABLED = True
    settings.RATE_LIMIT_REQUESTS_PER_SECOND = 1000
    settings.RATE_LIMIT_REQUESTS_PER_MINUTE = 3
    statuses = [auth_client.get(LIST.format(id=person.pk)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert view_calls == []


def test_one_cache_round_trip_and_two_queries(
    settings, person, auth_client, view_calls, django_assert_num_queries
):
    """The rate-limit script reads the authentication snapshot (on Redis; elsewhere one
    ``get_many``); the page and its count are one query on PostgreSQL, and the audit row one."""
    from django.db import connection

    settings.RATE_LIMIT_ENABLED = True
    url = LIST.format(id=person.pk)
    auth_client.get(url)
    with (
        cache_round_trips() as round_trips,
        django_assert_num_queries(2 if connection.vendor == "postgresql" else 3),
    ):
        response = auth_client.get(url)
    assert response.status_code == 200 and response.json()["count"] == 8
    assert round_trips["made"]() == round_trips["one"]
    assert view_calls == []


@pytest.mark.parametrize("direct", [True, False])
def test_a_database_that_is_down_is_a_503_either_way(settings, person, auth_client, view_calls, direct):
    import psycopg
    from django.db import OperationalError

    def refused(self, **kwargs):
        raise OperationalError("connection refused") from psycopg.OperationalError("connection refused")

    settings.DIRECT_ROUTES_ENABLED = direct
    with mock.patch("metrics.selectors.MetricRows.count_and_page", refused):
        response = auth_client.get(LIST.format(id=person.pk))
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable" and response["Retry-After"]
    assert len(view_calls) == (0 if direct else 1)


def test_a_bug_is_a_json_500(person, auth_client, view_calls):
    auth_client.raise_request_exception = False
    with mock.patch("metrics.selectors.MetricRows.count_and_page", side_effect=KeyError("bug")):
        response = auth_client.get(LIST.format(id=person.pk))
    assert response.status_code == 500 and response.json()["code"] == "server_error"


# --- POST /health-metrics -----------------------------------------------------------------

CREATE = "/api/v1/health-metrics"


@pytest.fixture
def create_calls(auth_client):
    """Calls that reached MetricCreateView's ``post`` (none when the middleware answered)."""
    assert auth_client.get("/api/v1/users/me").status_code == 200  # the snapshot, as in view_calls
    with calls_reaching(MetricCreateView, "post") as calls:
        yield calls


def _without_identity(response, sample) -> tuple:
    """Status, headers and body, without what differs between two stored samples (their
    ids and times of storing; the time of recording too when it defaults to now)."""
    differ = {"X-Request-ID", "Content-Length", "id", "created_at"}
    if "recorded_at" not in sample:
        differ.add("recorded_at")
    headers = {name: value for name, value in response.headers.items() if name not in differ}
    body = {name: value for name, value in response.json().items() if name not in differ}
    return response.status_code, headers, body


@pytest.mark.parametrize(
    "sample",
    [
        {"metric_type": "weight", "value": 80},
        {"metric_type": "weight", "value": 176.37, "unit": "lb", "notes": 'after "breakfast" é'},
        {"metric_type": "blood_pressure", "value": 128, "secondary_value": 84,
         "recorded_at": "2026-03-10T07:30:00+01:00"},
        {"metric_type": "steps", "value": 4200, "source": "garmin", "external_id": None, "id": 5,
         "user_id": None},
    ],
)  # fmt: skip
def test_a_valid_sample_is_stored_as_the_view_stores_it(settings, user, auth_client, create_calls, sample):
    if "user_id" in sample:
        sample = {**sample, "user_id": user.pk}  # a client may send back its own id
    settings.DIRECT_ROUTES_ENABLED = False
    through_view = auth_client.post(CREATE, sample, format="json")
    view_row = last_audit_row()
    assert create_calls == [CREATE]

    settings.DIRECT_ROUTES_ENABLED = True
    direct = auth_client.post(CREATE, sample, format="json")
    direct_row = last_audit_row()
    assert create_calls == [CREATE], "the middleware answered"

    assert through_view.status_code == 201
    assert _without_identity(direct, sample) == _without_identity(through_view, sample)
    assert {**direct_row, "object_ids": None} == {**view_row, "object_ids": None}
    assert direct_row["object_ids"] == [str(direct.json()["id"])] and direct_row["action"] == "create"
    stored = HealthMetric.objects.get(pk=direct.json()["id"])
    assert (stored.user_id, stored.value) == (user.pk, direct.json()["value"])


def test_a_sample_already_stored_is_returned_with_200(user, auth_client, create_calls):
    sample = {"metric_type": "heart_rate", "value": 61, "source": "apple_health", "external_id": "HK-1"}
    first = auth_client.post(CREATE, sample, format="json")
    again = auth_client.post(CREATE, {**sample, "value": 99}, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert last_audit_row()["action"] == "read"
    assert HealthMetric.objects.count() == 1 and create_calls == []


@pytest.mark.parametrize(
    ("body", "content_type", "status", "field"),
    [
        ('{"metric_type": "weight", "value": 1}', "application/json", 400, "value"),
        ('{"metric_type": "weight", "value": 80, "colour": "red"}', "application/json", 400, "colour"),
        ('{"metric_type": "weight"}', "application/json", 400, "value"),
        ('[{"metric_type": "weight", "value": 80}]', "application/json", 400, None),
        ('{"metric_type": "weight", "value": 80', "application/json", 400, None),
        ('{"metric_type": "weight", "value": NaN}', "application/json", 400, None),
        ("metric_type=weight&value=80", "application/x-www-form-urlencoded", 415, None),
    ],
)
def test_anything_but_a_valid_json_sample_is_the_views_to_refuse(
    auth_client, create_calls, body, content_type, status, field
):
    response = auth_client.post(CREATE, body, content_type=content_type)
    assert response.status_code == status
    if field is not None:
        assert field in response.json()["errors"]
    assert len(create_calls) == 1
    assert not HealthMetric.objects.exists()


def test_another_owner_and_a_large_body_are_the_views(settings, user, other_user, auth_client, create_calls):
    response = auth_client.post(
        f"{CREATE}?user_id={other_user.pk}", {"metric_type": "weight", "value": 80}, format="json"
    )
    assert response.status_code == 404 and len(create_calls) == 1
    settings.MAX_REQUEST_BODY_BYTES = 60
    response = auth_client.post(
        CREATE, {"metric_type": "weight", "value": 80, "notes": "x" * 60}, format="json"
    )
    assert response.status_code == 413
    assert not HealthMetric.objects.exists()


def test_a_post_costs_a_cache_round_trip_before_and_after_the_write_and_two_queries(
    settings, user, auth_client, create_calls, django_assert_num_queries
):
    """The rate-limit script reads the snapshot; the insert (one statement on PostgreSQL,
    plus the savepoint pair inside the test's transaction) and the audit row."""
    from django.db import connection

    settings.RATE_LIMIT_ENABLED = True
    with (
        mock.patch.object(
            ResilientRedisCache, "run_script", autospec=True, side_effect=ResilientRedisCache.run_script
        ) as script,
        django_assert_num_queries(4 if connection.vendor == "postgresql" else 5),
    ):
        response = auth_client.post(CREATE, {"metric_type": "weight", "value": 80}, format="json")
    assert response.status_code == 201 and create_calls == []
    on_redis = issubclass(type(caches["default"]), ResilientRedisCache)
    # On Redis: the rate-limit script before the write, the data-version bump after it.
    assert [call.args[1] for call in script.call_args_list] == (
        ["ratelimit-count", "data-version-bump"] if on_redis else []
    )


def test_a_database_that_is_down_is_a_503_and_stores_nothing(auth_client, create_calls):
    import psycopg
    from django.db import OperationalError

    def refused(**kwargs):
        raise OperationalError("connection refused") from psycopg.OperationalError("connection refused")

    with mock.patch("metrics.services.metric_create", refused):
        response = auth_client.post(CREATE, {"metric_type": "weight", "value": 80}, format="json")
    assert response.status_code == 503 and response.json()["code"] == "service_unavailable"
    assert create_calls == []
