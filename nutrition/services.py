"""Writes and rules for meals and water.

The rules live here (not in the serializer) so every writer (API, admin, imports)
gets the same answer. ``nutrition_log_errors`` is a pure function over a complete set
of values; create and update both validate the merged result.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone

from healthtrack.cache import user_data_version_bump
from metrics.models import Source
from nutrition.models import NUTRIENT_FIELDS, MealType, NutritionLog

# Upper bounds per entry: generous for a real meal or drink, far below a typo that
# would wreck a daily total (a whole day's food rarely passes 5,000 kcal).
NUTRIENT_MAX: dict[str, float] = {
    "calories": 10_000,  # kcal
    "protein_g": 1_000,
    "carbs_g": 1_000,
    "fat_g": 1_000,
    "water_ml": 10_000,
}
NUTRIENT_UNITS: dict[str, str] = {
    "calories": "kcal",
    "protein_g": "g",
    "carbs_g": "g",
    "fat_g": "g",
    "water_ml": "ml",
}
DESCRIPTION_MAX_LENGTH = 500
EXTERNAL_ID_MAX_LENGTH = 128
FUTURE_TOLERANCE = datetime.timedelta(minutes=5)

# What a client may change on an existing log. ``source`` and ``external_id`` identify
# a synced entry and never change (delete and re-post instead).
EDITABLE_FIELDS = ("meal_type", "description", *NUTRIENT_FIELDS, "logged_at")
IDENTITY_FIELDS = ("source", "external_id")

_NEEDS_CONTENT = "At least one of calories, protein_g, carbs_g, fat_g or water_ml is required."


def nutrition_log_errors(values: Mapping[str, Any], *, now: datetime.datetime | None = None) -> dict:
    """Every reason ``values`` (a complete log: meal_type, description, the nutrients,
    logged_at) cannot be stored, as ``{field: [reasons]}``; empty when valid."""
    errors: dict[str, list[str]] = {}
    meal_type = values.get("meal_type")
    if meal_type not in MealType.values:
        errors["meal_type"] = [f"Must be one of: {', '.join(MealType.values)}."]
    if len(values.get("description") or "") > DESCRIPTION_MAX_LENGTH:
        errors["description"] = [f"At most {DESCRIPTION_MAX_LENGTH} characters."]
    for name in NUTRIENT_FIELDS:
        value = values.get(name)
        if value is not None and not 0 <= value <= NUTRIENT_MAX[name]:
            errors[name] = [f"Must be between 0 and {NUTRIENT_MAX[name]:,} {NUTRIENT_UNITS[name]} per entry."]
    if all(values.get(name) is None for name in NUTRIENT_FIELDS):
        for name in NUTRIENT_FIELDS:
            errors.setdefault(name, []).append(_NEEDS_CONTENT)
    if meal_type == MealType.WATER and values.get("water_ml") is None:
        errors.setdefault("water_ml", []).append("Required when meal_type is 'water'.")
    logged_at = values.get("logged_at")
    if logged_at is None:
        errors["logged_at"] = ["Required."]
    elif logged_at > (now or timezone.now()) + FUTURE_TOLERANCE:
        errors["logged_at"] = ["May not be more than 5 minutes in the future."]
    return errors


def nutrition_log_validate(values: Mapping[str, Any]) -> None:
    """Raise a ValidationError naming every offending field."""
    errors = nutrition_log_errors(values)
    if errors:
        raise ValidationError(errors)


def _stored_duplicate(*, user_id: int, source: str, external_id: str | None) -> NutritionLog | None:
    if external_id is None:
        return None
    return NutritionLog.objects.filter(user_id=user_id, source=source, external_id=external_id).first()


@transaction.atomic
def nutrition_log_create(
    *,
    user_id: int,
    meal_type: str,
    description: str = "",
    calories: float | None = None,
    protein_g: float | None = None,
    carbs_g: float | None = None,
    fat_g: float | None = None,
    water_ml: float | None = None,
    logged_at: datetime.datetime | None = None,
    source: str = Source.MANUAL,
    external_id: str | None = None,
) -> tuple[NutritionLog, bool]:
    """Store a log; return ``(log, created)``.

    Syncing is idempotent: when ``(source, external_id)`` is already stored for this
    user, the stored log is returned unchanged (``created`` False) and nothing is
    written, also when two identical posts race.
    """
    duplicate = _stored_duplicate(user_id=user_id, source=source, external_id=external_id)
    if duplicate is not None:
        return duplicate, False
    values = {
        "meal_type": meal_type,
        "description": description or "",
        "calories": calories,
        "protein_g": protein_g,
        "carbs_g": carbs_g,
        "fat_g": fat_g,
        "water_ml": water_ml,
        "logged_at": logged_at or timezone.now(),
    }
    nutrition_log_validate(values)
    try:
        with transaction.atomic():
            log = NutritionLog.objects.create(
                user_id=user_id, source=source, external_id=external_id, **values
            )
    except IntegrityError:
        duplicate = _stored_duplicate(user_id=user_id, source=source, external_id=external_id)
        if duplicate is None:
            raise
        return duplicate, False
    user_data_version_bump(user_id=user_id)
    return log, True


@transaction.atomic
def nutrition_log_update(*, log: NutritionLog, changes: Mapping[str, Any]) -> NutritionLog:
    """Apply ``changes`` (any of EDITABLE_FIELDS) and validate the result as a whole.

    ``source``/``external_id`` may be sent back unchanged (a PUT of a GET body) but not
    changed: they are the entry's identity for syncing.
    """
    # Lock the row: two concurrent edits each clearing a different nutrient must not
    # together leave an empty log.
    log = NutritionLog.objects.select_for_update().filter(pk=log.pk).first()
    if log is None:  # deleted meanwhile
        raise Http404
    errors = {
        name: ["Cannot be changed; delete the log and post it again."]
        for name in IDENTITY_FIELDS
        if name in changes and changes[name] != getattr(log, name)
    }
    if errors:
        raise ValidationError(errors)
    values = {name: changes.get(name, getattr(log, name)) for name in EDITABLE_FIELDS}
    values["description"] = values["description"] or ""
    nutrition_log_validate(values)
    changed = [name for name in EDITABLE_FIELDS if values[name] != getattr(log, name)]
    if changed:
        for name in changed:
            setattr(log, name, values[name])
        log.save(update_fields=changed)
        user_data_version_bump(user_id=log.user_id)
    return log


@transaction.atomic
def nutrition_log_delete(*, log: NutritionLog) -> None:
    user_id = log.user_id
    log.delete()
    user_data_version_bump(user_id=user_id)
