"""Stored insights: create (clinicians, admins), retrieve, mark read, list."""

from __future__ import annotations

import datetime

import pytest

from healthtrack.models import AuditEvent
from insights.models import HealthInsight
from users.tests.factories import (
    AdminFactory,
    CareTeamMembershipFactory,
    ClinicianFactory,
    SupportFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

CREATE = "/api/v1/health-insights"


def detail(insight_id):
    return f"/api/v1/health-insights/{insight_id}"


def user_list(user_id, query=""):
    return f"/api/v1/health-insights/user/{user_id}{'?' + query if query else ''}"


def make_insight(user, **values) -> HealthInsight:
    values.setdefault("code", "low_steps")
    values.setdefault("title", "Move more")
    values.setdefault("insight_date", datetime.date(2026, 3, 1))
    return HealthInsight.objects.create(user=user, **values)


@pytest.fixture
def clinician_of(make_client):
    def build(patient):
        membership = CareTeamMembershipFactory(patient=patient)
        return membership.clinician, make_client(membership.clinician)

    return build


# --- Create -------------------------------------------------------------------------


def test_care_team_clinician_creates_an_insight(user, clinician_of):
    clinician, client = clinician_of(user)
    response = client.post(
        CREATE,
        {
            "user_id": user.pk,
            "title": "Talk to me about your blood pressure",
            "reasoning": "Your readings have climbed over the last month.",
            "action_steps": ["Book an appointment"],
            "evidence": {"metric": "blood_pressure"},
            "severity": "medium",
            "related_metric_type": "blood_pressure",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["user_id"] == user.pk
    assert body["created_by"] == clinician.pk
    assert body["code"] == "clinician_note"
    assert body["severity"] == "medium"
    assert body["rank"] is None
    assert body["is_read"] is False and body["read_at"] is None
    assert body["action_steps"] == ["Book an appointment"]
    assert body["insight_date"] == datetime.date.today().isoformat()
    stored = HealthInsight.objects.get(pk=body["id"])
    assert stored.created_by_id == clinician.pk
    event = AuditEvent.objects.get(action="create")
    assert (event.resource_type, event.subject_id, event.object_ids) == ("insight", user.pk, [str(stored.pk)])


def test_admin_creates_an_insight(make_client, user):
    response = make_client(AdminFactory()).post(CREATE, {"user_id": user.pk, "title": "Hello"}, format="json")
    assert response.status_code == 201


def test_clinician_outside_the_care_team_gets_404(make_client, user):
    response = make_client(ClinicianFactory()).post(CREATE, {"user_id": user.pk, "title": "x"}, format="json")
    assert response.status_code == 404
    assert not HealthInsight.objects.exists()
    assert AuditEvent.objects.get().action == "denied"


@pytest.mark.parametrize("who", ["self", "other"])
def test_people_cannot_create_insights(auth_client, user, other_user, who):
    target = user if who == "self" else other_user
    response = auth_client.post(CREATE, {"user_id": target.pk, "title": "I am great"}, format="json")
    assert response.status_code == 403
    assert not HealthInsight.objects.exists()
    denial = AuditEvent.objects.get()
    assert (denial.action, denial.subject_id) == ("denied", target.pk)


def test_support_staff_cannot_create_insights(make_client, user):
    response = make_client(SupportFactory()).post(CREATE, {"user_id": user.pk, "title": "x"}, format="json")
    assert response.status_code == 403


def test_clinician_cannot_annotate_themself(make_client):
    clinician = ClinicianFactory()
    response = make_client(clinician).post(CREATE, {"user_id": clinician.pk, "title": "x"}, format="json")
    assert response.status_code == 403


def test_admin_creating_for_unknown_user_is_404(make_client):
    client = make_client(AdminFactory())
    assert client.post(CREATE, {"user_id": 999_999, "title": "x"}, format="json").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "x"}, "user_id"),
        ({"user_id": "abc", "title": "x"}, "user_id"),
        ({"user_id": "{user}"}, "title"),
        ({"user_id": "{user}", "title": "x", "severity": "extreme"}, "severity"),
        ({"user_id": "{user}", "title": "x", "rank": 6}, "rank"),
        ({"user_id": "{user}", "title": "x", "code": "Bad Code!"}, "code"),
        ({"user_id": "{user}", "title": "x", "action_steps": "walk"}, "action_steps"),
        ({"user_id": "{user}", "title": "x", "evidence": [1, 2]}, "evidence"),
        ({"user_id": "{user}", "title": "x", "evidence": {"blob": "x" * 20_000}}, "evidence"),
        ({"user_id": "{user}", "title": "x", "related_metric_type": "mood"}, "related_metric_type"),
        ({"user_id": "{user}", "title": "x", "is_read": True}, "is_read"),
        ({"user_id": "{user}", "title": "x", "created_by": 1}, "created_by"),
    ],
)
def test_create_validation_names_the_field(user, clinician_of, body, field):
    _, client = clinician_of(user)
    body = {key: (user.pk if value == "{user}" else value) for key, value in body.items()}
    response = client.post(CREATE, body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not HealthInsight.objects.exists()


@pytest.mark.parametrize(
    ("evidence", "message"),
    [
        ('{"a\\u0000": 1}', "Null characters are not allowed."),
        ('{"steps": [1, {"note": "x\\u0000"}]}', "Null characters are not allowed."),
        ('{"note": "\\ud800"}', "Surrogate characters are not allowed: U+D800."),
        ('{"big": [1e20]}', "Numbers must be between -9.22e+18 and 9.22e+18."),
        ('{"big": -1e19}', "Numbers must be between -9.22e+18 and 9.22e+18."),
    ],
)
def test_evidence_the_database_cannot_store_is_a_400(user, clinician_of, evidence, message):
    """Found by schemathesis: NUL in evidence reached PostgreSQL's jsonb, a 500; and 1e20,
    stored, came back from jsonb as an integer no JSON renderer here can write (500 on
    every read of the insight and on the personal export)."""
    _, client = clinician_of(user)
    body = '{"user_id": %d, "title": "x", "evidence": %s}' % (user.pk, evidence)  # noqa: UP031 - raw JSON
    response = client.post(CREATE, body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"evidence": [message]}
    assert not HealthInsight.objects.exists()


def test_evidence_numbers_inside_the_limit_read_back(user, clinician_of):
    _, client = clinician_of(user)
    body = '{"user_id": %d, "title": "x", "evidence": {"n": [1.5e18, -9e18, 0.25]}}' % user.pk  # noqa: UP031
    created = client.post(CREATE, body, content_type="application/json")
    assert created.status_code == 201, created.content
    read = client.get(f"/api/v1/health-insights/{created.json()['id']}")
    assert read.status_code == 200
    assert read.json()["evidence"] == {"n": [1.5e18, -9e18, 0.25]}


# --- Retrieve and mark read ---------------------------------------------------------


def test_owner_reads_an_insight(auth_client, user):
    insight = make_insight(user, evidence={"average": 3_150}, action_steps=["Walk"])
    response = auth_client.get(detail(insight.pk))
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == insight.pk
    assert body["evidence"] == {"average": 3_150}
    assert body["created_by"] is None
    event = AuditEvent.objects.get()
    assert (event.action, event.resource_type, event.object_ids) == ("read", "insight", [str(insight.pk)])


def test_someone_elses_insight_is_404(auth_client, other_user):
    insight = make_insight(other_user)
    assert auth_client.get(detail(insight.pk)).status_code == 404
    assert auth_client.patch(detail(insight.pk), {"is_read": True}, format="json").status_code == 404
    insight.refresh_from_db()
    assert insight.is_read is False
    assert set(AuditEvent.objects.values_list("action", flat=True)) == {"denied"}


@pytest.mark.parametrize("insight_id", ["999999", "99999999999999999999999"])
def test_missing_insight_is_404(auth_client, insight_id):
    assert auth_client.get(detail(insight_id)).status_code == 404


def test_owner_marks_read_and_unread(auth_client, user):
    insight = make_insight(user)
    response = auth_client.patch(detail(insight.pk), {"is_read": True}, format="json")
    assert response.status_code == 200
    assert response.json()["is_read"] is True
    insight.refresh_from_db()
    first_read = insight.read_at
    assert insight.is_read and first_read is not None
    auth_client.patch(detail(insight.pk), {"is_read": True}, format="json")
    insight.refresh_from_db()
    assert insight.read_at == first_read  # the first read is what counts
    response = auth_client.patch(detail(insight.pk), {"is_read": False}, format="json")
    assert response.json()["read_at"] is None
    insight.refresh_from_db()
    assert not insight.is_read and insight.read_at is None
    assert AuditEvent.objects.filter(action="update", resource_type="insight").count() == 3


@pytest.mark.parametrize(
    ("body", "field"),
    [({"title": "Changed"}, "title"), ({"is_read": True, "severity": "low"}, "severity"), ({}, "is_read"),
     ({"is_read": "perhaps"}, "is_read"), ({"is_read": True, "user_id": 5}, "user_id")],
)  # fmt: skip
def test_only_is_read_can_change(auth_client, user, body, field):
    insight = make_insight(user)
    response = auth_client.patch(detail(insight.pk), body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    insight.refresh_from_db()
    assert insight.title == "Move more" and not insight.is_read


def test_clinician_and_admin_may_read_but_not_mark_read(make_client, user, clinician_of):
    insight = make_insight(user)
    _, clinician = clinician_of(user)
    admin = make_client(AdminFactory())
    for client in (clinician, admin):
        assert client.get(detail(insight.pk)).status_code == 200
        assert client.patch(detail(insight.pk), {"is_read": True}, format="json").status_code == 403
    insight.refresh_from_db()
    assert not insight.is_read


# --- List ---------------------------------------------------------------------------


def test_list_is_newest_first_and_filters_read(auth_client, user, other_user):
    older = make_insight(user, code="low_steps")
    newer = make_insight(user, code="insufficient_sleep", is_read=True)
    make_insight(other_user)
    body = auth_client.get(user_list(user.pk)).json()
    assert body["count"] == 2
    assert [row["id"] for row in body["results"]] == [newer.pk, older.pk]
    unread = auth_client.get(user_list(user.pk, "is_read=false")).json()
    assert [row["id"] for row in unread["results"]] == [older.pk]
    read = auth_client.get(user_list(user.pk, "is_read=true")).json()
    assert [row["id"] for row in read["results"]] == [newer.pk]


def test_list_bad_filter_is_400(auth_client, user):
    response = auth_client.get(user_list(user.pk, "is_read=sometimes"))
    assert response.status_code == 400
    assert "is_read" in response.json()["errors"]


def test_list_of_someone_else_is_404(auth_client, other_user):
    make_insight(other_user)
    assert auth_client.get(user_list(other_user.pk)).status_code == 404


def test_list_for_care_team_and_admin(make_client, user, clinician_of):
    make_insight(user)
    _, clinician = clinician_of(user)
    assert clinician.get(user_list(user.pk)).json()["count"] == 1
    assert make_client(AdminFactory()).get(user_list(user.pk)).json()["count"] == 1
    assert make_client(ClinicianFactory()).get(user_list(user.pk)).status_code == 404


def test_list_query_count_does_not_grow_with_page_size(auth_client, user, django_assert_num_queries):
    for index in range(12):
        make_insight(user, code=f"code_{index}")
    auth_client.get("/api/v1/users/me")  # warm the authentication snapshot
    # count + page + audit row
    with django_assert_num_queries(3):
        small = auth_client.get(user_list(user.pk, "limit=2")).json()
    with django_assert_num_queries(3):
        large = auth_client.get(user_list(user.pk, "limit=500")).json()
    assert len(small["results"]) == 2 and len(large["results"]) == 12
    assert small["next"] is not None


def test_list_query_count_for_a_clinician(make_client, user, clinician_of, django_assert_num_queries):
    for index in range(5):
        make_insight(user, code=f"code_{index}")
    _, client = clinician_of(user)
    client.get("/api/v1/users/me")
    # care-team check + count + page + audit row
    with django_assert_num_queries(4):
        assert client.get(user_list(user.pk, "limit=1")).status_code == 200
    with django_assert_num_queries(4):
        assert client.get(user_list(user.pk, "limit=50")).status_code == 200


def test_list_paginates_with_skip(auth_client, user):
    for index in range(5):
        make_insight(user, code=f"code_{index}")
    first = auth_client.get(user_list(user.pk, "limit=2")).json()
    second = auth_client.get(user_list(user.pk, "limit=2&skip=2")).json()
    assert {row["id"] for row in first["results"]}.isdisjoint({row["id"] for row in second["results"]})


def test_list_for_unknown_user_is_404_for_admin(make_client):
    response = make_client(AdminFactory()).get(user_list(UserFactory().pk + 1000))
    assert response.status_code == 404
