"""nutrition.services.nutrition_log_bulk_create: many logs at once, validated like the API,
one INSERT, duplicates skipped, daily totals brought up to date when asked."""

from __future__ import annotations

import datetime

import pytest
from django.db import IntegrityError, connection
from django.utils import timezone

from healthtrack.cache import user_data_version
from nutrition import selectors, services
from nutrition.models import NutritionLog
from nutrition.tests.factories import NutritionLogFactory

pytestmark = pytest.mark.django_db

CREATE = "/api/v1/nutrition-logs"
AT = "2024-03-01T12:00:00-08:00"


def water(external_id=None, ml=250, source="apple_health", **extra):
    entry = {"meal_type": "water", "water_ml": ml, "logged_at": AT, "source": source, **extra}
    if external_id is not None:
        entry["external_id"] = external_id
    return entry


def totals_only(source, external_id):
    return source == "apple_health" and external_id.startswith("day:")


def stored(user):
    return {
        (log.source, log.external_id): (log.meal_type, log.water_ml, log.calories)
        for log in NutritionLog.objects.filter(user=user)
    }


def test_mix_of_valid_invalid_and_duplicate_entries(user):
    NutritionLogFactory(user=user, source="apple_health", external_id="stored")
    entries = [
        water("a"),  # 0 new
        {"meal_type": "lunch", "calories": 600, "logged_at": AT},  # 1 new, no sync id, manual
        water("stored", 5),  # 2 duplicate of a stored log
        water("a", 999),  # 3 duplicate of entry 0 within the batch
        {"meal_type": "water", "logged_at": AT},  # 4 no content
        "not an object",  # 5
        {"meal_type": "brunch", "calories": 1, "colour": "red"},  # 6 two problems
        water("a", source="fitbit"),  # 7 new: same id, other source
        {"meal_type": "snack", "calories": 20_000},  # 8 over the bound
    ]
    result = services.nutrition_log_bulk_create(user_id=user.pk, entries=entries)

    assert (len(result.created_ids), result.duplicates, result.updated_ids) == (3, 2, [])
    assert {(e["index"], e["field"]) for e in result.errors} == {
        (4, "calories"),
        (4, "protein_g"),
        (4, "carbs_g"),
        (4, "fat_g"),
        (4, "water_ml"),
        (5, "non_field_errors"),
        (6, "colour"),
        (8, "calories"),
    }
    assert stored(user) == {
        ("apple_health", "stored"): ("lunch", None, 550.0),
        ("apple_health", "a"): ("water", 250.0, None),
        ("manual", None): ("lunch", None, 600.0),
        ("fitbit", "a"): ("water", 250.0, None),
    }
    assert set(result.created_ids) == set(
        NutritionLog.objects.exclude(external_id="stored").values_list("id", flat=True)
    )


@pytest.mark.parametrize(
    "entry",
    [
        {"meal_type": "brunch", "calories": 1},
        {"meal_type": "water", "calories": 1},
        {"meal_type": "lunch"},
        {"meal_type": "lunch", "calories": -1},
        {"meal_type": "lunch", "calories": "lots"},
        {"meal_type": "lunch", "calories": 1, "logged_at": "yesterday"},
        {"meal_type": "lunch", "calories": 1, "logged_at": "2999-01-01T00:00:00Z"},
        {"meal_type": "lunch", "calories": 1, "description": "x" * 501},
        {"meal_type": "lunch", "calories": 1, "source": "carrier_pigeon"},
        {"meal_type": "lunch", "calories": 1, "external_id": "x" * 129},
        {"meal_type": "lunch", "calories": 1, "user_id_typo": 3},
    ],
)
def test_bulk_and_the_api_give_the_same_errors(auth_client, user, entry):
    response = auth_client.post(CREATE, entry, format="json")
    assert response.status_code == 400
    result = services.nutrition_log_bulk_create(user_id=user.pk, entries=[entry])
    by_field: dict[str, list[str]] = {}
    for error in result.errors:
        assert error["index"] == 0
        by_field.setdefault(error["field"], []).append(error["message"])
    assert by_field == response.json()["errors"]
    assert not NutritionLog.objects.exists()


def test_defaults_are_the_apis(user):
    before = timezone.now()
    services.nutrition_log_bulk_create(user_id=user.pk, entries=[{"meal_type": "snack", "calories": 90}])
    log = NutritionLog.objects.get()
    assert (log.source, log.external_id, log.description) == ("manual", None, "")
    assert before <= log.logged_at <= timezone.now()


def test_a_changed_daily_total_is_updated_in_place_an_equal_one_is_a_duplicate(user):
    services.nutrition_log_bulk_create(
        user_id=user.pk,
        entries=[water("day:1", 1000), water("day:2", 500), water("cup:1", 250)],
        update_existing=totals_only,
    )
    ids = dict(NutritionLog.objects.values_list("external_id", "id"))
    later = "2024-03-01T12:00:00-05:00"
    result = services.nutrition_log_bulk_create(
        user_id=user.pk,
        entries=[
            water("day:1", 1500, logged_at=later, description="now with tea"),  # changed
            water("day:2", 500),  # the same
            water("cup:1", 300),  # not updatable
            water("day:3", 200),  # new
        ],
        update_existing=totals_only,
    )
    assert (len(result.created_ids), result.updated_ids, result.duplicates) == (1, [ids["day:1"]], 2)
    day1 = NutritionLog.objects.get(external_id="day:1")
    assert (day1.pk, day1.water_ml, day1.description) == (ids["day:1"], 1500, "now with tea")
    assert day1.logged_at == datetime.datetime.fromisoformat(later)
    assert NutritionLog.objects.get(external_id="cup:1").water_ml == 250


def test_an_update_may_clear_a_nutrient_the_later_export_no_longer_has(user):
    food = {"meal_type": "snack", "logged_at": AT, "source": "apple_health", "external_id": "day:1"}
    services.nutrition_log_bulk_create(
        user_id=user.pk, entries=[{**food, "calories": 900, "fat_g": 30}], update_existing=totals_only
    )
    result = services.nutrition_log_bulk_create(
        user_id=user.pk, entries=[{**food, "calories": 950}], update_existing=totals_only
    )
    assert len(result.updated_ids) == 1
    log = NutritionLog.objects.get()
    assert (log.calories, log.fat_g) == (950, None)


def test_notify_bumps_the_data_version_once_and_only_when_asked(user):
    version = user_data_version(user.pk)
    services.nutrition_log_bulk_create(user_id=user.pk, entries=[water("a"), water("b")], notify=False)
    assert user_data_version(user.pk) == version
    services.nutrition_log_bulk_create(user_id=user.pk, entries=[water("c")])
    assert user_data_version(user.pk) == version + 1
    services.nutrition_log_bulk_create(user_id=user.pk, entries=[water("c")])  # nothing new
    assert user_data_version(user.pk) == version + 1


def test_a_concurrent_insert_of_the_same_id_is_retried_as_a_duplicate(user, monkeypatch):
    """Another request stores one of our ids after our look-up: the INSERT fails as a
    whole, is rolled back and retried without it. Nothing lost, nothing stored twice."""
    real = selectors.nutrition_synced_rows
    calls = []

    def look_up_then_race(**kwargs):
        calls.append(1)
        found = real(**kwargs)
        if len(calls) == 1:
            NutritionLogFactory(user=user, source="apple_health", external_id="b", calories=7)
        return found

    monkeypatch.setattr(selectors, "nutrition_synced_rows", look_up_then_race)
    result = services.nutrition_log_bulk_create(user_id=user.pk, entries=[water("a"), water("b"), water("c")])
    assert len(calls) == 2
    assert (len(result.created_ids), result.duplicates) == (2, 1)
    assert stored(user)[("apple_health", "b")] == ("lunch", None, 7)
    assert NutritionLog.objects.count() == 3


def test_a_daily_total_deleted_after_the_look_up_is_created_again(user, monkeypatch):
    services.nutrition_log_bulk_create(user_id=user.pk, entries=[water("day:1", 100)])
    real = selectors.nutrition_synced_rows
    calls = []

    def look_up_then_delete(**kwargs):
        calls.append(1)
        found = real(**kwargs)
        if len(calls) == 1:
            NutritionLog.objects.all().delete()
        return found

    monkeypatch.setattr(selectors, "nutrition_synced_rows", look_up_then_delete)
    result = services.nutrition_log_bulk_create(
        user_id=user.pk, entries=[water("day:1", 300)], update_existing=totals_only
    )
    assert len(calls) == 2
    assert (len(result.created_ids), result.updated_ids) == (1, [])
    assert NutritionLog.objects.get().water_ml == 300


def test_persistent_integrity_error_is_raised_not_looped(user, monkeypatch):
    def always_conflict(objs, **kwargs):
        raise IntegrityError("conflict")

    monkeypatch.setattr(NutritionLog.objects, "bulk_create", always_conflict)
    with pytest.raises(IntegrityError):
        services.nutrition_log_bulk_create(user_id=user.pk, entries=[water("a")])
    assert not NutritionLog.objects.exists()


def test_query_count_does_not_grow_with_the_batch(user, django_assert_num_queries):
    services.nutrition_log_bulk_create(
        user_id=user.pk, entries=[water(f"day:{n}", 100 + n) for n in range(40)], update_existing=totals_only
    )
    entries = [water(f"day:{n}", 200 + n) for n in range(40)] + [water(f"new:{n}") for n in range(60)]
    fields = [f for f in NutritionLog._meta.concrete_fields if f.name != "id"]
    inserts = (
        1
        if connection.vendor == "postgresql"
        else -(-60 // connection.ops.bulk_batch_size(fields, [None] * 60))
    )
    editable = [NutritionLog._meta.get_field(name) for name in services.EDITABLE_FIELDS]
    updates = -(-40 // connection.ops.bulk_batch_size(["pk", "pk", *editable], [None] * 40))
    # look-up, then UPDATE + INSERT inside a savepoint pair (the version bump is the cache's).
    with django_assert_num_queries(1 + updates + inserts + 2):
        result = services.nutrition_log_bulk_create(
            user_id=user.pk, entries=entries, update_existing=totals_only
        )
    assert (len(result.created_ids), len(result.updated_ids)) == (60, 40)
