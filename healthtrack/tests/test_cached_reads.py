"""Cache hits answered before DRF (healthtrack.cached_reads): the same answer as the view's,
or the view answers."""

from __future__ import annotations

import datetime
import logging
import time
from unittest import mock

import jwt
import pytest
from django.utils import timezone
from rest_framework_simplejwt.state import token_backend

from healthtrack.observability import requests_by_view
from healthtrack.tests.early_answers import cache_round_trips, comparable, last_audit_row
from insights.views import RecommendationsView
from metrics.tests.factories import HealthMetricFactory
from metrics.views import MetricSummaryView
from users.services import user_deactivate
from users.tests.factories import CareTeamMembershipFactory, ClinicianFactory

pytestmark = pytest.mark.django_db

RECOMMENDATIONS = "/api/v1/recommendations/{id}"
SUMMARY = "/api/v1/health-metrics/summary"
VIEWS = {RECOMMENDATIONS: RecommendationsView, SUMMARY: MetricSummaryView}


@pytest.fixture
def person(user):
    HealthMetricFactory(user=user, metric_type="steps", value=4200, unit="steps")
    return user


@pytest.fixture
def view_calls():
    """Calls that reached each view's ``get`` (zero when the middleware answered)."""
    calls = {RECOMMENDATIONS: 0, SUMMARY: 0}
    patches = []
    for route, view in VIEWS.items():
        original = view.get

        def counted(self, request, *args, _original=original, _route=route, **kwargs):
            calls[_route] += 1
            return _original(self, request, *args, **kwargs)

        patches.append(mock.patch.object(view, "get", counted))
    for patch in patches:
        patch.start()
    yield calls
    for patch in patches:
        patch.stop()


def _url(route: str, user) -> str:
    return route.format(id=user.pk)


@pytest.mark.parametrize(
    ("route", "query"),
    [
        (RECOMMENDATIONS, ""),
        (RECOMMENDATIONS, "?days=7"),
        (RECOMMENDATIONS, "?days=30&use_cache=true"),
        (SUMMARY, ""),
        (SUMMARY, "?days=7"),
        (SUMMARY, "?metric_type=steps&user_id={id}"),
    ],
)
def test_a_cache_hit_gets_the_views_answer_without_the_view(
    settings, person, auth_client, view_calls, route, query
):
    url = _url(route, person) + query.format(id=person.pk)
    first = auth_client.get(url)
    assert first.status_code == 200 and first.json()["cached"] is False
    assert view_calls[route] == 1

    settings.CACHED_READS_ENABLED = False
    through_view = auth_client.get(url)
    view_row = last_audit_row()
    assert view_calls[route] == 2

    settings.CACHED_READS_ENABLED = True
    early = auth_client.get(url)
    early_row = last_audit_row()
    assert view_calls[route] == 2, "the middleware answered"

    assert through_view.json()["cached"] is True
    assert comparable(early) == comparable(through_view)
    assert early_row == view_row
    assert early_row["actor_id"] == person.pk and early_row["action"] == "read"


@pytest.mark.parametrize("route", [RECOMMENDATIONS, SUMMARY])
def test_the_request_log_and_metrics_name_the_caller_and_the_view(
    person, auth_client, view_calls, route, caplog
):
    url = _url(route, person)
    auth_client.get(url)
    view_name = "recommendations" if route == RECOMMENDATIONS else "metric-summary"
    before = requests_by_view.labels(view_name, "http", "GET")._value.get()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="healthtrack.request"):
        assert auth_client.get(url).status_code == 200
    assert view_calls[route] == 1
    assert requests_by_view.labels(view_name, "http", "GET")._value.get() == before + 1
    (line,) = [record for record in caplog.records if record.name == "healthtrack.request"]
    assert line.user_id == person.pk and line.status == 200


@pytest.mark.parametrize(
    "query",
    [
        "?days=0",
        "?days=abc",
        "?days=400",
        "?days=030",
        "?days=7&days=8",
        "?use_cache=false",
        "?use_cache=maybe",
    ],
)
def test_queries_not_in_plain_form_go_to_the_view(person, auth_client, view_calls, query):
    url = _url(RECOMMENDATIONS, person)
    auth_client.get(url + "?days=30")
    auth_client.get(url + "?days=7")
    response = auth_client.get(url + query)
    assert view_calls[RECOMMENDATIONS] == 3
    if query in ("?days=0", "?days=abc", "?days=400", "?use_cache=maybe"):
        assert response.status_code == 400
        assert response.json()["errors"].keys() <= {"days", "use_cache"}
    else:
        assert response.status_code == 200


@pytest.mark.parametrize("query", ["?format=xml", "?format=json", "?unknown=1"])
@pytest.mark.parametrize("route", [RECOMMENDATIONS, SUMMARY])
def test_parameters_the_route_does_not_name_go_to_the_view(person, auth_client, view_calls, route, query):
    """DRF reads ``format`` itself (404 for one it cannot render): the view decides."""
    url = _url(route, person)
    auth_client.get(url)
    response = auth_client.get(url + query)
    expected = auth_client.get(url + query)  # the view's own answer, twice
    assert response.status_code == expected.status_code
    assert view_calls[route] == 3 or response.status_code == 404


@pytest.mark.parametrize("query", ["?metric_type=unknown", "?days=0", "?user_id=0{id}"])
def test_summary_queries_not_in_plain_form_go_to_the_view(person, auth_client, view_calls, query):
    auth_client.get(SUMMARY)
    response = auth_client.get(SUMMARY + query.format(id=person.pk))
    assert view_calls[SUMMARY] == 2
    assert response.status_code in (400, 404) if "user_id" not in query else response.status_code == 200


@pytest.mark.parametrize("route", [RECOMMENDATIONS, SUMMARY])
def test_someone_elses_data_is_left_to_the_views_authorization(
    person, auth_client, other_client, view_calls, route
):
    auth_client.get(_url(route, person))  # cached for the person
    url = _url(RECOMMENDATIONS, person) if route == RECOMMENDATIONS else f"{SUMMARY}?user_id={person.pk}"
    response = other_client.get(url)
    assert response.status_code == 404
    assert view_calls[route] == 2
    assert last_audit_row()["action"] == "denied"


def test_a_clinician_on_the_care_team_is_answered_by_the_view(person, auth_client, make_client, view_calls):
    clinician = ClinicianFactory()
    CareTeamMembershipFactory(patient=person, clinician=clinician)
    url = _url(RECOMMENDATIONS, person)
    auth_client.get(url)
    response = make_client(clinician).get(url)
    assert response.status_code == 200 and response.json()["cached"] is True
    assert view_calls[RECOMMENDATIONS] == 2
    assert last_audit_row()["actor_id"] == clinician.pk


@pytest.mark.parametrize("route", [RECOMMENDATIONS, SUMMARY])
def test_a_write_makes_the_next_read_fresh(person, auth_client, view_calls, route):
    url = _url(route, person)
    auth_client.get(url)
    created = auth_client.post(
        "/api/v1/health-metrics",
        {"metric_type": "steps", "value": 9000, "unit": "steps", "recorded_at": timezone.now().isoformat()},
        format="json",
    )
    assert created.status_code == 201
    response = auth_client.get(url)
    assert response.json()["cached"] is False
    assert view_calls[route] == 2


def test_a_signed_out_session_is_refused(person, auth_client, view_calls):
    url = _url(RECOMMENDATIONS, person)
    auth_client.get(url)
    auth_client.post("/api/v1/auth/logout", {"refresh": auth_client.tokens["refresh"]}, format="json")
    response = auth_client.get(url)
    assert response.status_code == 401  # DRF's authentication refused it
    assert response.json()["code"] == "token_revoked"


def test_a_deactivated_account_is_refused(person, auth_client, view_calls):
    url = _url(SUMMARY, person)
    auth_client.get(url)
    user_deactivate(user_id=person.pk)
    response = auth_client.get(url)
    assert response.status_code == 401  # DRF's authentication refused it
    assert response.json()["code"] == "user_inactive"


def test_a_token_that_expires_after_being_remembered_is_refused(
    settings, monkeypatch, person, auth_client, view_calls
):
    monkeypatch.setattr(token_backend, "leeway", 0)  # else the token outlives exp by LEEWAY
    url = _url(RECOMMENDATIONS, person)
    auth_client.get(url)
    payload = jwt.decode(auth_client.tokens["access"], options={"verify_signature": False})
    payload["exp"] = int(time.time()) + 1
    short_lived = jwt.encode(payload, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")
    auth_client.credentials(HTTP_AUTHORIZATION=f"Bearer {short_lived}")
    assert auth_client.get(url).status_code == 200  # verified and remembered
    time.sleep(1.1)
    response = auth_client.get(url)
    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


def test_a_summary_cached_on_another_local_day_is_recomputed(person, auth_client, view_calls):
    auth_client.get(SUMMARY)
    tomorrow = timezone.now() + datetime.timedelta(days=1)
    with mock.patch("django.utils.timezone.now", return_value=tomorrow):
        response = auth_client.get(SUMMARY)
    assert response.json()["cached"] is False
    assert response.json()["end_date"] == tomorrow.date().isoformat()
    assert view_calls[SUMMARY] == 2


def test_a_summary_cached_in_another_time_zone_is_recomputed(person, auth_client, view_calls):
    auth_client.get(SUMMARY)
    assert (
        auth_client.patch("/api/v1/users/me", {"timezone": "Pacific/Kiritimati"}, format="json").status_code
        == 200
    )
    response = auth_client.get(SUMMARY)
    assert response.json()["cached"] is False and response.json()["timezone"] == "Pacific/Kiritimati"
    assert view_calls[SUMMARY] == 2


def test_only_json_is_answered_early(person, auth_client, view_calls):
    url = _url(RECOMMENDATIONS, person)
    auth_client.get(url)
    response = auth_client.get(url, HTTP_ACCEPT="text/html")
    assert response.status_code == 406  # DRF's content negotiation refused it


def test_answered_early_requests_count_against_the_rate_limit_once(settings, person, auth_client, view_calls):
    url = _url(RECOMMENDATIONS, person)
    auth_client.get(url)
    settings.RATE_LIMIT_ENABLED = True
    settings.RATE_LIMIT_REQUESTS_PER_SECOND = 1000
    settings.RATE_LIMIT_REQUESTS_PER_MINUTE = 3
    statuses = [auth_client.get(url).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert view_calls[RECOMMENDATIONS] == 1


def test_a_hit_costs_one_cache_round_trip(settings, person, auth_client, view_calls):
    """On Redis the rate-limit script also reads the snapshot and the entry; elsewhere
    (counters counted one by one) the middleware reads both in one ``get_many``."""
    settings.RATE_LIMIT_ENABLED = True
    url = _url(RECOMMENDATIONS, person)
    auth_client.get(url)
    with cache_round_trips() as round_trips:
        response = auth_client.get(url)
    assert response.status_code == 200 and response.json()["cached"] is True
    assert round_trips["made"]() == round_trips["one"]
    assert view_calls[RECOMMENDATIONS] == 1
