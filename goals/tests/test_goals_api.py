import datetime
import zoneinfo

import pytest
from django.utils import timezone

from goals.models import HealthGoal
from goals.tests.factories import HealthGoalFactory, WeightLossGoalFactory, record_metric
from healthtrack.cache import user_data_version
from healthtrack.models import AuditEvent
from users.tests.factories import AdminFactory, CareTeamMembershipFactory, ClinicianFactory, UserFactory

pytestmark = pytest.mark.django_db

CREATE = "/api/v1/health-goals"


def detail(goal_id):
    return f"/api/v1/health-goals/{goal_id}"


def user_list(user_id, query=""):
    return f"/api/v1/health-goals/user/{user_id}{query}"


def errors_of(response):
    assert response.status_code == 400, response.content
    return response.json()["errors"]


def in_days(days: int, tz: str = "UTC") -> str:
    return (
        timezone.now().astimezone(zoneinfo.ZoneInfo(tz)).date() + datetime.timedelta(days=days)
    ).isoformat()


GOAL_FIELDS = {
    "id", "user_id", "goal_type", "title", "description", "metric_type", "start_value", "current_value",
    "target_value", "unit", "progress_percent", "priority", "status", "target_date", "completed_at",
    "created_at", "updated_at",
}  # fmt: skip


# --- Create ---------------------------------------------------------------------------


def test_create_goal_without_data_link(auth_client, user):
    version = user_data_version(user.pk)
    response = auth_client.post(
        CREATE,
        {
            "goal_type": "custom",
            "title": "Meditate",
            "description": "Ten sessions",
            "current_value": 2,
            "target_value": 10,
            "unit": "sessions",
            "priority": "high",
            "target_date": in_days(30),
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == GOAL_FIELDS
    assert body["user_id"] == user.pk
    assert body["metric_type"] is None
    assert (body["start_value"], body["current_value"], body["target_value"]) == (2, 2, 10)
    assert body["progress_percent"] == 0.0
    assert (body["status"], body["priority"], body["completed_at"]) == ("active", "high", None)
    assert user_data_version(user.pk) != version
    event = AuditEvent.objects.get()
    assert (event.action, event.resource_type, event.subject_id, event.object_ids) == (
        "create",
        "goal",
        user.pk,
        [str(body["id"])],
    )


def test_create_linked_weight_goal_starts_from_the_latest_weight(auth_client, user):
    record_metric(user, "weight", 93.0, timezone.now() - datetime.timedelta(days=20))
    record_metric(user, "weight", 91.2, timezone.now() - datetime.timedelta(days=2))
    response = auth_client.post(
        CREATE,
        {"goal_type": "weight_loss", "title": "Lose weight", "metric_type": "weight", "target_value": 85},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["metric_type"], body["unit"]) == ("weight", "kg")
    assert (body["start_value"], body["current_value"], body["target_value"]) == (91.2, 91.2, 85)
    assert body["progress_percent"] == 0.0


def test_create_linked_goal_in_another_unit_is_stored_canonically(auth_client, user):
    record_metric(user, "weight", 100.0)
    response = auth_client.post(
        CREATE,
        {
            "goal_type": "weight_loss",
            "title": "Lose 20 lb",
            "metric_type": "weight",
            "start_value": 220,
            "target_value": 200,
            "unit": "LB",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["unit"] == "kg"
    assert body["target_value"] == pytest.approx(90.718, abs=0.001)
    assert body["start_value"] == pytest.approx(99.790, abs=0.001)
    assert body["current_value"] == 100.0


def test_create_linked_goal_without_data_has_no_progress_yet(auth_client):
    body = auth_client.post(
        CREATE,
        {"goal_type": "step_count", "title": "Walk", "metric_type": "steps", "target_value": 8000},
        format="json",
    ).json()
    assert (body["start_value"], body["current_value"], body["progress_percent"]) == (None, None, None)
    assert body["unit"] == "count"


def test_target_date_today_is_fine_in_the_users_own_time_zone(make_client):
    person = UserFactory(profile__timezone="Pacific/Kiritimati")  # UTC+14: often already tomorrow
    response = make_client(person).post(
        CREATE,
        {
            "goal_type": "custom",
            "title": "Today",
            "target_value": 1,
            "target_date": in_days(0, "Pacific/Kiritimati"),
        },
        format="json",
    )
    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "x", "target_value": 1}, "goal_type"),
        ({"goal_type": "flying", "title": "x", "target_value": 1}, "goal_type"),
        ({"goal_type": "custom", "target_value": 1}, "title"),
        ({"goal_type": "custom", "title": "", "target_value": 1}, "title"),
        ({"goal_type": "custom", "title": "x" * 201, "target_value": 1}, "title"),
        ({"goal_type": "custom", "title": "x"}, "target_value"),
        ({"goal_type": "custom", "title": "x", "target_value": "much"}, "target_value"),
        ({"goal_type": "custom", "title": "x", "target_value": 1e12}, "target_value"),
        ({"goal_type": "custom", "title": "x", "target_value": 1, "priority": "urgent"}, "priority"),
        (
            {"goal_type": "custom", "title": "x", "target_value": 1, "target_date": "2001-01-01"},
            "target_date",
        ),
        ({"goal_type": "custom", "title": "x", "target_value": 1, "target_date": "soon"}, "target_date"),
        ({"goal_type": "custom", "title": "x", "target_value": 1, "status": "completed"}, "status"),
        ({"goal_type": "custom", "title": "x", "target_value": 1, "completed_at": None}, "completed_at"),
        ({"goal_type": "custom", "title": "x", "target_value": 1, "metric_type": "mood"}, "metric_type"),
        ({"goal_type": "custom", "title": "x", "target_value": 1, "unit": "x" * 17}, "unit"),
        ({"goal_type": "custom", "title": "x", "start_value": 3, "target_value": 3}, "target_value"),
        ({"goal_type": "custom", "title": "x", "current_value": 5, "target_value": 5}, "target_value"),
        (
            {"goal_type": "weight_loss", "title": "x", "metric_type": "weight", "target_value": 600},
            "target_value",
        ),
        (
            {
                "goal_type": "weight_loss",
                "title": "x",
                "metric_type": "weight",
                "start_value": 1,
                "target_value": 1,
            },
            "start_value",
        ),
        (
            {
                "goal_type": "weight_loss",
                "title": "x",
                "metric_type": "weight",
                "target_value": 80,
                "unit": "st",
            },
            "unit",
        ),
        (
            {"goal_type": "weight_loss", "title": "x", "metric_type": "steps", "target_value": 80},
            "metric_type",
        ),
        (
            {
                "goal_type": "step_count",
                "title": "x",
                "metric_type": "steps",
                "target_value": 9,
                "current_value": 1,
            },
            "current_value",
        ),
        (
            {
                "goal_type": "weight_loss",
                "title": "x",
                "metric_type": "weight",
                "start_value": 80,
                "target_value": 85,
            },
            "target_value",
        ),
        ({"goal_type": "weight_gain", "title": "x", "start_value": 70, "target_value": 65}, "target_value"),
    ],
)
def test_create_rejects_bad_input_naming_the_field(auth_client, body, field):
    assert field in errors_of(auth_client.post(CREATE, body, format="json"))
    assert not HealthGoal.objects.exists()


def test_current_value_of_a_linked_goal_is_refused_with_a_reason(auth_client):
    errors = errors_of(
        auth_client.post(
            CREATE,
            {
                "goal_type": "step_count",
                "title": "x",
                "metric_type": "steps",
                "target_value": 9000,
                "current_value": 1,
            },
            format="json",
        )
    )
    assert errors["current_value"] == ["Follows your steps data and cannot be set; leave it out."]


def test_weight_loss_target_above_the_current_weight_is_refused(auth_client, user):
    record_metric(user, "weight", 78)
    errors = errors_of(
        auth_client.post(
            CREATE,
            {"goal_type": "weight_loss", "title": "x", "metric_type": "weight", "target_value": 80},
            format="json",
        )
    )
    assert "must be below the start value (78)" in errors["target_value"][0]


def test_create_for_another_user_is_404(auth_client, other_user):
    body = {"goal_type": "custom", "title": "x", "target_value": 1}
    assert auth_client.post(f"{CREATE}?user_id={other_user.pk}", body, format="json").status_code == 404
    assert not HealthGoal.objects.exists()
    assert AuditEvent.objects.get().action == "denied"


def test_admin_creates_for_anyone(make_client, user):
    client = make_client(AdminFactory())
    body = {"goal_type": "custom", "title": "x", "target_value": 1}
    assert client.post(f"{CREATE}?user_id={user.pk}", body, format="json").json()["user_id"] == user.pk
    assert client.post(f"{CREATE}?user_id=987654", body, format="json").status_code == 404


# --- Update -----------------------------------------------------------------------------


def test_patch_editable_fields(auth_client, user):
    goal = HealthGoalFactory(user=user)
    version = user_data_version(user.pk)
    response = auth_client.patch(
        detail(goal.pk),
        {
            "title": "Renamed",
            "description": "Now with notes",
            "priority": "low",
            "target_value": 12,
            "target_date": in_days(10),
            "current_value": 7,
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["title"], body["description"], body["priority"]) == ("Renamed", "Now with notes", "low")
    assert (body["target_value"], body["current_value"], body["progress_percent"]) == (12, 7, 58.3)
    assert body["target_date"] == in_days(10)
    assert user_data_version(user.pk) != version
    assert AuditEvent.objects.get().action == "update"


@pytest.mark.parametrize(
    ("field", "value"),
    [("goal_type", "weight_gain"), ("metric_type", "steps"), ("start_value", 1), ("unit", "lb")],
)
def test_fields_that_define_the_goal_cannot_change(auth_client, user, field, value):
    goal = WeightLossGoalFactory(user=user)
    errors = errors_of(auth_client.patch(detail(goal.pk), {field: value}, format="json"))
    assert errors[field] == ["Cannot be changed after creation; create a new goal instead."]
    goal.refresh_from_db()
    assert (goal.goal_type, goal.metric_type, goal.start_value, goal.unit) == (
        "weight_loss",
        "weight",
        90,
        "kg",
    )


def test_put_round_trip_of_a_get_body(auth_client, user):
    record_metric(user, "weight", 88)
    goal = WeightLossGoalFactory(user=user)
    body = auth_client.get(detail(goal.pk)).json()
    body["target_value"] = 82
    response = auth_client.put(detail(goal.pk), body, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["target_value"] == 82
    assert response.json()["current_value"] == 88  # refreshed from the data
    assert "target_value" in errors_of(auth_client.put(detail(goal.pk), {"title": "x"}, format="json"))


def test_current_value_of_a_linked_goal_cannot_be_set(auth_client, user):
    goal = WeightLossGoalFactory(user=user)
    errors = errors_of(auth_client.patch(detail(goal.pk), {"current_value": 70}, format="json"))
    assert "Follows your weight data" in errors["current_value"][0]
    goal.refresh_from_db()
    assert goal.current_value == 90
    event = AuditEvent.objects.get()  # the refused change is on the trail
    assert (event.action, event.resource_type, event.object_ids, event.status) == (
        "update",
        "goal",
        [str(goal.pk)],
        400,
    )


def test_reaching_the_target_by_hand_completes_an_unlinked_goal(auth_client, user):
    goal = HealthGoalFactory(user=user, start_value=0, current_value=2, target_value=10)
    body = auth_client.patch(detail(goal.pk), {"current_value": 10}, format="json").json()
    assert (body["status"], body["progress_percent"]) == ("completed", 100.0)
    assert body["completed_at"] is not None


def test_status_transitions(auth_client, user):
    goal = HealthGoalFactory(user=user)
    done = auth_client.patch(detail(goal.pk), {"status": "completed"}, format="json").json()
    assert done["status"] == "completed" and done["completed_at"] is not None
    assert "status" in errors_of(auth_client.patch(detail(goal.pk), {"status": "abandoned"}, format="json"))
    reopened = auth_client.patch(detail(goal.pk), {"status": "active"}, format="json").json()
    assert reopened["status"] == "active" and reopened["completed_at"] is None
    dropped = auth_client.patch(detail(goal.pk), {"status": "abandoned"}, format="json").json()
    assert dropped["status"] == "abandoned" and dropped["completed_at"] is None
    errors = errors_of(auth_client.patch(detail(goal.pk), {"status": "completed"}, format="json"))
    assert errors["status"] == ["From abandoned, a goal can only become: active."]
    assert (
        auth_client.patch(detail(goal.pk), {"status": "active"}, format="json").json()["status"] == "active"
    )


def test_reopening_a_goal_whose_target_is_reached_needs_a_new_target(auth_client, user):
    goal = HealthGoalFactory(user=user, current_value=10, target_value=10, status="completed")
    errors = errors_of(auth_client.patch(detail(goal.pk), {"status": "active"}, format="json"))
    assert "change target_value" in errors["status"][0]
    body = auth_client.patch(detail(goal.pk), {"status": "active", "target_value": 15}, format="json").json()
    assert (body["status"], body["target_value"], body["completed_at"]) == ("active", 15, None)


@pytest.mark.parametrize(("value", "ok"), [(-5, False), (0, True)])
def test_target_date_on_update(auth_client, user, value, ok):
    goal = HealthGoalFactory(user=user)
    response = auth_client.patch(detail(goal.pk), {"target_date": in_days(value)}, format="json")
    assert (response.status_code == 200) is ok
    if not ok:
        assert "target_date" in response.json()["errors"]


def test_an_old_target_date_may_stay_when_other_fields_change(auth_client, user):
    goal = HealthGoalFactory(user=user, target_date=datetime.date(2020, 1, 1))
    body = auth_client.get(detail(goal.pk)).json()
    body["priority"] = "high"
    assert auth_client.put(detail(goal.pk), body, format="json").status_code == 200


def test_weight_loss_target_cannot_move_above_the_start(auth_client, user):
    goal = WeightLossGoalFactory(user=user)
    assert "target_value" in errors_of(
        auth_client.patch(detail(goal.pk), {"target_value": 95}, format="json")
    )
    assert "target_value" in errors_of(
        auth_client.patch(detail(goal.pk), {"target_value": 501}, format="json")
    )


def test_delete(auth_client, user):
    goal = HealthGoalFactory(user=user)
    version = user_data_version(user.pk)
    assert auth_client.delete(detail(goal.pk)).status_code == 204
    assert not HealthGoal.objects.exists()
    assert user_data_version(user.pk) != version
    assert AuditEvent.objects.get().action == "delete"


# --- Who may see and change what --------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_another_users_goal_is_404_and_unchanged(auth_client, other_user, method):
    goal = HealthGoalFactory(user=other_user, title="Theirs", target_value=10)
    response = getattr(auth_client, method)(
        detail(goal.pk), {"target_value": 1, "title": "Mine"}, format="json"
    )
    assert response.status_code == 404
    goal.refresh_from_db()
    assert (goal.title, goal.target_value) == ("Theirs", 10)
    event = AuditEvent.objects.get()
    assert (event.action, event.subject_id) == ("denied", other_user.pk)


def test_missing_and_absurd_ids_are_404(auth_client):
    assert auth_client.get(detail(987654)).status_code == 404
    assert auth_client.delete(detail(2**70)).status_code == 404
    assert auth_client.get(user_list(2**70)).status_code == 404


@pytest.mark.parametrize("path", ["/api/v1/health-goals/user/%0A", "/api/v1/health-goals/a%0Ab"])
def test_odd_paths_are_json_404_also_with_debug_on(auth_client, settings, path):
    settings.DEBUG = True
    response = auth_client.get(path)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_another_users_list_is_404(auth_client, other_user):
    HealthGoalFactory(user=other_user)
    assert auth_client.get(user_list(other_user.pk)).status_code == 404


def test_care_team_clinician_reads_but_cannot_write(make_client, user):
    clinician = ClinicianFactory()
    CareTeamMembershipFactory(patient=user, clinician=clinician)
    client = make_client(clinician)
    goal = HealthGoalFactory(user=user, title="Patient's")
    assert client.get(detail(goal.pk)).json()["title"] == "Patient's"
    assert client.get(user_list(user.pk)).json()["count"] == 1
    assert client.patch(detail(goal.pk), {"title": "X"}, format="json").status_code == 404
    assert client.put(detail(goal.pk), {"target_value": 1}, format="json").status_code == 404
    assert client.delete(detail(goal.pk)).status_code == 404
    body = {"goal_type": "custom", "title": "x", "target_value": 1}
    assert client.post(f"{CREATE}?user_id={user.pk}", body, format="json").status_code == 404
    goal.refresh_from_db()
    assert goal.title == "Patient's"
    assert HealthGoal.objects.count() == 1


# --- List ---------------------------------------------------------------------------------


def test_list_newest_first_with_status_filter(auth_client, user, other_user):
    first = HealthGoalFactory(user=user)
    done = HealthGoalFactory(user=user, status="completed", completed_at=timezone.now())
    dropped = HealthGoalFactory(user=user, status="abandoned")
    HealthGoalFactory(user=other_user)
    ids = lambda query="": [r["id"] for r in auth_client.get(user_list(user.pk, query)).json()["results"]]  # noqa: E731
    assert ids() == [dropped.pk, done.pk, first.pk]
    assert ids("?status_filter=active") == [first.pk]
    assert ids("?status_filter=completed") == [done.pk]
    assert ids("?status_filter=abandoned") == [dropped.pk]
    assert "status_filter" in errors_of(auth_client.get(user_list(user.pk, "?status_filter=done")))
    assert "status_filter" in errors_of(auth_client.get(user_list(user.pk, "?status_filter=")))


def test_list_query_count_is_fixed_whatever_the_page_size(auth_client, user, django_assert_num_queries):
    HealthGoalFactory.create_batch(8, user=user)
    WeightLossGoalFactory.create_batch(4, user=user)
    auth_client.get("/api/v1/users/me")  # warm the authentication snapshot
    for query in ("?limit=1", "?limit=5&skip=5", "?limit=500&status_filter=active", ""):
        with django_assert_num_queries(3):  # count + page + audit row
            response = auth_client.get(user_list(user.pk, query))
        assert response.status_code == 200
    assert len(response.json()["results"]) == 12
    assert all(row["progress_percent"] is not None for row in response.json()["results"])


def test_clinician_list_query_count_is_fixed(make_client, user, django_assert_num_queries):
    clinician = ClinicianFactory()
    CareTeamMembershipFactory(patient=user, clinician=clinician)
    HealthGoalFactory.create_batch(5, user=user)
    client = make_client(clinician)
    client.get("/api/v1/users/me")
    for query in ("?limit=1", "?limit=500"):
        with django_assert_num_queries(4):  # care-team check + count + page + audit row
            assert client.get(user_list(user.pk, query)).status_code == 200
