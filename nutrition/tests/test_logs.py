import datetime

import pytest
from django.utils import timezone

from conftest import client_for
from healthtrack.cache import user_data_version
from healthtrack.models import AuditEvent
from nutrition import services
from nutrition.models import NutritionLog
from nutrition.tests.factories import NutritionLogFactory, WaterLogFactory
from users.tests.factories import AdminFactory, CareTeamMembershipFactory, ClinicianFactory

pytestmark = pytest.mark.django_db

CREATE = "/api/v1/nutrition-logs"
NUTRIENTS = ["calories", "protein_g", "carbs_g", "fat_g", "water_ml"]


def detail(log_id):
    return f"/api/v1/nutrition-logs/{log_id}"


def user_list(user_id, query=""):
    return f"/api/v1/nutrition-logs/user/{user_id}{query}"


def errors_of(response):
    assert response.status_code == 400, response.content
    return response.json()["errors"]


# --- Create --------------------------------------------------------------------------


def test_create_stores_meal_and_defaults(auth_client, user):
    before = timezone.now()
    response = auth_client.post(
        CREATE,
        {"meal_type": "breakfast", "description": "Porridge", "calories": 350, "protein_g": 12.5},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["user_id"] == user.pk
    assert body["calories"] == 350.0 and body["protein_g"] == 12.5
    assert body["carbs_g"] is None and body["water_ml"] is None
    assert body["source"] == "manual" and body["external_id"] is None
    log = NutritionLog.objects.get(pk=body["id"])
    assert log.user_id == user.pk
    assert before <= log.logged_at <= timezone.now()
    assert set(body) == {
        "id", "user_id", "meal_type", "description", "calories", "protein_g", "carbs_g", "fat_g",
        "water_ml", "logged_at", "source", "external_id", "created_at",
    }  # fmt: skip


def test_create_water_entry_with_explicit_time(auth_client):
    at = "2026-01-05T07:30:00-08:00"
    response = auth_client.post(
        CREATE + "/", {"meal_type": "water", "water_ml": 500, "logged_at": at}, format="json"
    )
    assert response.status_code == 201
    log = NutritionLog.objects.get()
    assert log.logged_at == datetime.datetime(2026, 1, 5, 15, 30, tzinfo=datetime.UTC)


def test_create_audits_and_bumps_data_version(auth_client, user):
    version = user_data_version(user.pk)
    response = auth_client.post(CREATE, {"meal_type": "snack", "calories": 120}, format="json")
    assert user_data_version(user.pk) != version
    event = AuditEvent.objects.get()
    assert (event.action, event.resource_type, event.subject_id, event.object_ids) == (
        "create",
        "nutrition",
        user.pk,
        [str(response.json()["id"])],
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"meal_type": "brunch", "calories": 100}, "meal_type"),
        ({"calories": 100}, "meal_type"),
        ({"meal_type": "lunch", "calories": -1}, "calories"),
        ({"meal_type": "lunch", "calories": 10_001}, "calories"),
        ({"meal_type": "lunch", "protein_g": 1_001}, "protein_g"),
        ({"meal_type": "lunch", "carbs_g": -0.5}, "carbs_g"),
        ({"meal_type": "lunch", "fat_g": 5_000}, "fat_g"),
        ({"meal_type": "water", "water_ml": 10_001}, "water_ml"),
        ({"meal_type": "lunch", "calories": "lots"}, "calories"),
        ({"meal_type": "lunch", "calories": "NaN"}, "calories"),
        ({"meal_type": "water", "calories": 5}, "water_ml"),
        ({"meal_type": "lunch", "calories": 1, "description": "x" * 501}, "description"),
        ({"meal_type": "lunch", "calories": 1, "logged_at": "yesterday"}, "logged_at"),
        ({"meal_type": "lunch", "calories": 1, "logged_at": None}, "logged_at"),
        ({"meal_type": "lunch", "calories": 1, "source": "telepathy"}, "source"),
        ({"meal_type": "lunch", "calories": 1, "external_id": ""}, "external_id"),
        ({"meal_type": "lunch", "calories": 1, "external_id": "x" * 129}, "external_id"),
        ({"meal_type": "lunch", "calories": 1, "kcal": 5}, "kcal"),
    ],
)
def test_create_rejects_bad_input_naming_the_field(auth_client, body, field):
    response = auth_client.post(CREATE, body, format="json")
    assert field in errors_of(response)
    assert NutritionLog.objects.count() == 0


def test_create_requires_some_content_naming_every_nutrient(auth_client):
    errors = errors_of(auth_client.post(CREATE, {"meal_type": "dinner", "description": "?"}, format="json"))
    assert set(errors) == set(NUTRIENTS)
    assert "At least one of calories, protein_g, carbs_g, fat_g or water_ml" in errors["calories"][0]


def test_create_accepts_zero_values_and_the_upper_bounds(auth_client):
    body = {"meal_type": "lunch", "calories": 10_000, "protein_g": 1_000, "carbs_g": 0, "fat_g": 1_000}
    assert auth_client.post(CREATE, body, format="json").status_code == 201
    assert auth_client.post(CREATE, {"meal_type": "water", "water_ml": 0}, format="json").status_code == 201


def test_logged_at_may_be_slightly_but_not_far_in_the_future(auth_client):
    soon = (timezone.now() + datetime.timedelta(minutes=4)).isoformat()
    later = (timezone.now() + datetime.timedelta(minutes=6)).isoformat()
    ok = auth_client.post(CREATE, {"meal_type": "snack", "calories": 90, "logged_at": soon}, format="json")
    assert ok.status_code == 201
    errors = errors_of(
        auth_client.post(CREATE, {"meal_type": "snack", "calories": 90, "logged_at": later}, format="json")
    )
    assert errors["logged_at"] == ["May not be more than 5 minutes in the future."]
    assert NutritionLog.objects.count() == 1


def test_repost_with_same_source_and_external_id_returns_stored_entry(auth_client, user):
    body = {"meal_type": "lunch", "calories": 640, "source": "apple_health", "external_id": "hk-123"}
    first = auth_client.post(CREATE, body, format="json")
    assert first.status_code == 201
    version = user_data_version(user.pk)
    again = auth_client.post(CREATE, {**body, "calories": 999}, format="json")
    assert again.status_code == 200
    assert again.json() == first.json()
    assert NutritionLog.objects.count() == 1
    assert NutritionLog.objects.get().calories == 640
    assert user_data_version(user.pk) == version  # nothing written, nothing invalidated
    # The same external id from another source, or for another person, is another entry.
    other_source = auth_client.post(CREATE, {**body, "source": "google_fit"}, format="json")
    assert other_source.status_code == 201
    assert NutritionLog.objects.count() == 2


def test_concurrent_identical_posts_store_one_entry(auth_client, user, monkeypatch):
    """The other request inserted between our duplicate check and our insert: the unique
    constraint refuses ours and the stored entry is returned."""
    body = {"meal_type": "water", "water_ml": 300, "source": "garmin", "external_id": "g-7"}
    real_lookup = services._stored_duplicate
    calls = []

    def racing_lookup(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:  # the other request wins the race right after our check
            NutritionLogFactory(
                user=user, meal_type="water", water_ml=300, source="garmin", external_id="g-7"
            )
            return None
        return real_lookup(**kwargs)

    monkeypatch.setattr(services, "_stored_duplicate", racing_lookup)
    response = auth_client.post(CREATE, body, format="json")
    assert response.status_code == 200
    assert NutritionLog.objects.count() == 1
    assert response.json()["id"] == NutritionLog.objects.get().pk


def test_same_external_id_for_another_user_is_a_separate_entry(auth_client, other_client):
    body = {"meal_type": "water", "water_ml": 300, "source": "fitbit", "external_id": "w-1"}
    assert auth_client.post(CREATE, body, format="json").status_code == 201
    assert other_client.post(CREATE, body, format="json").status_code == 201
    assert NutritionLog.objects.count() == 2


def test_create_for_another_user_is_404_and_audited(auth_client, user, other_user):
    response = auth_client.post(
        f"{CREATE}?user_id={other_user.pk}", {"meal_type": "lunch", "calories": 1}, format="json"
    )
    assert response.status_code == 404
    assert NutritionLog.objects.count() == 0
    event = AuditEvent.objects.get()
    assert (event.action, event.actor_id, event.subject_id) == ("denied", user.pk, other_user.pk)


def test_user_id_in_the_body_is_ignored(auth_client, user, other_user):
    response = auth_client.post(CREATE, {"meal_type": "lunch", "calories": 1, "user_id": other_user.pk})
    assert response.status_code == 201
    assert NutritionLog.objects.get().user_id == user.pk


def test_create_for_self_by_explicit_user_id(auth_client, user):
    response = auth_client.post(f"{CREATE}?user_id={user.pk}", {"meal_type": "lunch", "calories": 1})
    assert response.status_code == 201
    assert response.json()["user_id"] == user.pk


@pytest.mark.parametrize("user_id", ["abc", "", "0", "-3", str(2**70)])
def test_create_with_malformed_user_id_is_404(auth_client, user_id):
    response = auth_client.post(f"{CREATE}?user_id={user_id}", {"meal_type": "lunch", "calories": 1})
    assert response.status_code == 404
    assert NutritionLog.objects.count() == 0


def test_repeated_user_id_is_400(auth_client, user):
    response = auth_client.post(
        f"{CREATE}?user_id={user.pk}&user_id={user.pk}", {"meal_type": "lunch", "calories": 1}
    )
    assert "user_id" in errors_of(response)


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_malformed_log_id_in_the_path_is_a_json_404_even_with_csrf_checks(user, method):
    client = client_for(user)
    client.handler.enforce_csrf_checks = True
    response = getattr(client, method)(detail("null,null"), {"calories": 1}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_admin_may_log_for_anyone_but_not_for_nobody(make_client, user):
    client = make_client(AdminFactory())
    response = client.post(f"{CREATE}?user_id={user.pk}", {"meal_type": "lunch", "calories": 1})
    assert response.status_code == 201
    assert NutritionLog.objects.get().user_id == user.pk
    assert client.post(f"{CREATE}?user_id=987654", {"meal_type": "lunch", "calories": 1}).status_code == 404


def test_unauthenticated_is_401(api_client):
    assert api_client.post(CREATE, {"meal_type": "lunch", "calories": 1}).status_code == 401
    assert api_client.get(user_list(1)).status_code == 401


# --- Retrieve, update, delete -----------------------------------------------------------


def test_owner_reads_one_log(auth_client, user):
    log = NutritionLogFactory(user=user)
    response = auth_client.get(detail(log.pk))
    assert response.status_code == 200
    assert response.json()["id"] == log.pk
    event = AuditEvent.objects.get()
    assert (event.action, event.resource_type, event.subject_id) == ("read", "nutrition", user.pk)


def test_patch_changes_values_and_bumps_version(auth_client, user):
    log = NutritionLogFactory(user=user, calories=500)
    version = user_data_version(user.pk)
    response = auth_client.patch(detail(log.pk), {"calories": 450, "description": "Half"}, format="json")
    assert response.status_code == 200
    log.refresh_from_db()
    assert (log.calories, log.description, log.protein_g) == (450, "Half", 25.0)
    assert user_data_version(user.pk) != version
    assert AuditEvent.objects.get().action == "update"


def test_refused_writes_are_on_the_audit_trail_too(auth_client, user):
    log = NutritionLogFactory(user=user)
    auth_client.patch(detail(log.pk), {"calories": -5}, format="json")
    auth_client.post(CREATE, {"meal_type": "lunch"}, format="json")
    rows = list(AuditEvent.objects.order_by("id").values_list("action", "subject_id", "object_ids", "status"))
    assert rows == [("update", user.pk, [str(log.pk)], 400), ("create", user.pk, [], 400)]


def test_patch_may_clear_a_nutrient_but_not_all_of_them(auth_client, user):
    log = NutritionLogFactory(user=user, calories=None, protein_g=None, carbs_g=None, fat_g=10)
    errors = errors_of(auth_client.patch(detail(log.pk), {"fat_g": None}, format="json"))
    assert set(errors) == set(NUTRIENTS)
    log.refresh_from_db()
    assert log.fat_g == 10


def test_patch_to_water_requires_water_ml(auth_client, user):
    log = NutritionLogFactory(user=user)
    assert "water_ml" in errors_of(auth_client.patch(detail(log.pk), {"meal_type": "water"}, format="json"))
    response = auth_client.patch(detail(log.pk), {"meal_type": "water", "water_ml": 330}, format="json")
    assert response.status_code == 200


def test_put_round_trip_and_required_meal_type(auth_client, user):
    log = NutritionLogFactory(user=user, source="apple_health", external_id="hk-9")
    body = auth_client.get(detail(log.pk)).json()
    body["calories"] = 600
    response = auth_client.put(detail(log.pk), body, format="json")
    assert response.status_code == 200
    assert response.json()["calories"] == 600
    assert "meal_type" in errors_of(auth_client.put(detail(log.pk), {"calories": 1}, format="json"))


@pytest.mark.parametrize(("field", "value"), [("source", "fitbit"), ("external_id", "other-id")])
def test_sync_identity_cannot_change(auth_client, user, field, value):
    log = NutritionLogFactory(user=user, source="apple_health", external_id="hk-9")
    assert field in errors_of(auth_client.patch(detail(log.pk), {field: value}, format="json"))
    log.refresh_from_db()
    assert (log.source, log.external_id) == ("apple_health", "hk-9")


def test_update_rejects_future_logged_at(auth_client, user):
    log = NutritionLogFactory(user=user)
    later = (timezone.now() + datetime.timedelta(hours=1)).isoformat()
    assert "logged_at" in errors_of(auth_client.patch(detail(log.pk), {"logged_at": later}, format="json"))


def test_delete_removes_log_and_bumps_version(auth_client, user):
    log = WaterLogFactory(user=user)
    version = user_data_version(user.pk)
    assert auth_client.delete(detail(log.pk)).status_code == 204
    assert not NutritionLog.objects.exists()
    assert user_data_version(user.pk) != version
    event = AuditEvent.objects.get()
    assert (event.action, event.object_ids) == ("delete", [str(log.pk)])


def test_missing_and_absurd_ids_are_404(auth_client):
    assert auth_client.get(detail(987654)).status_code == 404
    assert auth_client.get(detail(2**70)).status_code == 404
    assert auth_client.patch(detail(2**70), {"calories": 1}, format="json").status_code == 404
    assert auth_client.get(user_list(2**70)).status_code == 404


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_another_users_log_is_404_and_unchanged(auth_client, user, other_user, method):
    log = NutritionLogFactory(user=other_user, calories=500)
    response = getattr(auth_client, method)(
        detail(log.pk), {"meal_type": "snack", "calories": 1}, format="json"
    )
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}
    log.refresh_from_db()
    assert (log.meal_type, log.calories) == ("lunch", 500)
    event = AuditEvent.objects.get()
    assert (event.action, event.subject_id, event.object_ids) == ("denied", other_user.pk, [str(log.pk)])


def test_another_users_list_is_404(auth_client, other_user):
    NutritionLogFactory(user=other_user)
    assert auth_client.get(user_list(other_user.pk)).status_code == 404


# --- Care team ----------------------------------------------------------------------------


@pytest.fixture
def clinician_client(make_client, user):
    clinician = ClinicianFactory()
    CareTeamMembershipFactory(patient=user, clinician=clinician)
    return make_client(clinician)


def test_care_team_clinician_reads_but_cannot_write(clinician_client, user):
    log = NutritionLogFactory(user=user, calories=500)
    assert clinician_client.get(detail(log.pk)).status_code == 200
    assert clinician_client.get(user_list(user.pk)).json()["count"] == 1
    assert clinician_client.patch(detail(log.pk), {"calories": 1}, format="json").status_code == 404
    assert clinician_client.put(detail(log.pk), {"meal_type": "snack"}, format="json").status_code == 404
    assert clinician_client.delete(detail(log.pk)).status_code == 404
    created = clinician_client.post(f"{CREATE}?user_id={user.pk}", {"meal_type": "lunch", "calories": 1})
    assert created.status_code == 404
    log.refresh_from_db()
    assert log.calories == 500
    assert NutritionLog.objects.count() == 1


def test_clinician_without_care_team_sees_nothing(make_client, user):
    log = NutritionLogFactory(user=user)
    client = make_client(ClinicianFactory())
    assert client.get(detail(log.pk)).status_code == 404
    assert client.get(user_list(user.pk)).status_code == 404


# --- List --------------------------------------------------------------------------------


def test_list_is_most_recent_first_and_own_rows_only(auth_client, user, other_user):
    now = timezone.now()
    old = NutritionLogFactory(user=user, logged_at=now - datetime.timedelta(days=2))
    new = NutritionLogFactory(user=user, logged_at=now - datetime.timedelta(minutes=5))
    middle = WaterLogFactory(user=user, logged_at=now - datetime.timedelta(days=1))
    NutritionLogFactory(user=other_user)
    body = auth_client.get(user_list(user.pk)).json()
    assert body["count"] == 3 and body["limit"] == 50 and body["skip"] == 0
    assert [row["id"] for row in body["results"]] == [new.pk, middle.pk, old.pk]
    event = AuditEvent.objects.get()
    assert event.object_ids == [str(new.pk), str(middle.pk), str(old.pk)]


def test_list_filters(auth_client, user):
    base = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC)
    logs = [NutritionLogFactory(user=user, logged_at=base + datetime.timedelta(days=day)) for day in range(4)]
    water = WaterLogFactory(user=user, logged_at=base + datetime.timedelta(days=1, hours=1))
    ids = lambda query: [row["id"] for row in auth_client.get(user_list(user.pk, query)).json()["results"]]  # noqa: E731
    assert ids("?meal_type=water") == [water.pk]
    assert ids("?since=2026-03-02T12:00:00Z") == [logs[3].pk, logs[2].pk, water.pk, logs[1].pk]
    assert ids("?until=2026-03-02T12:00:00Z") == [logs[0].pk]
    assert ids("?since=2026-03-02T00:00:00Z&until=2026-03-03T00:00:00Z&meal_type=lunch") == [logs[1].pk]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?meal_type=brunch", "meal_type"),
        ("?since=soon", "since"),
        ("?until=2026-13-01", "until"),
        ("?since=2026-03-02T00:00:00Z&until=2026-03-01T00:00:00Z", "until"),
        ("?limit=0", "limit"),
        ("?limit=501", "limit"),
        ("?skip=-1", "skip"),
        ("?limit=&skip=", "limit"),
        ("?skip=29656802387975172096", "skip"),
        ("?meal_type=", "meal_type"),
    ],
)
def test_list_bad_filters_are_400(auth_client, user, query, field):
    assert field in errors_of(auth_client.get(user_list(user.pk, query)))


def test_list_query_count_is_fixed_whatever_the_page_size(auth_client, user, django_assert_num_queries):
    NutritionLogFactory.create_batch(12, user=user)
    auth_client.get("/api/v1/users/me")  # warm the authentication snapshot
    # count + page + audit row
    for query in ("?limit=1", "?limit=5&skip=5", "?limit=500", ""):
        with django_assert_num_queries(3):
            response = auth_client.get(user_list(user.pk, query))
        assert response.status_code == 200
    assert len(response.json()["results"]) == 12


def test_clinician_list_query_count_is_fixed(clinician_client, user, django_assert_num_queries):
    NutritionLogFactory.create_batch(6, user=user)
    clinician_client.get("/api/v1/users/me")
    # care-team check + count + page + audit row
    for query in ("?limit=1", "?limit=500"):
        with django_assert_num_queries(4):
            assert clinician_client.get(user_list(user.pk, query)).status_code == 200
