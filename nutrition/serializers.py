"""Request and response bodies for meals and water.

Field types and bounds here are for parsing and for the OpenAPI schema; the rules
themselves (and the cross-field ones) are enforced in nutrition.services.
"""

from __future__ import annotations

from rest_framework import serializers

from healthtrack.serializers import StrictFieldsMixin, iso_datetime
from metrics.models import Source
from nutrition.models import MealType, NutritionLog
from nutrition.selectors import SUMMARY_MAX_DAYS
from nutrition.services import DESCRIPTION_MAX_LENGTH, EXTERNAL_ID_MAX_LENGTH, NUTRIENT_MAX


def _nutrient(name: str, help_text: str) -> serializers.FloatField:
    return serializers.FloatField(
        min_value=0,
        max_value=NUTRIENT_MAX[name],
        allow_null=True,
        required=False,
        help_text=help_text,
    )


class NutritionLogSerializer(StrictFieldsMixin, serializers.Serializer):
    """A meal, snack or drink.

    At least one of `calories`, `protein_g`, `carbs_g`, `fat_g`, `water_ml` is required;
    `meal_type` `water` requires `water_ml`. Values are per entry, non-negative, with
    upper bounds of 10,000 kcal, 1,000 g per macro and 10,000 ml.
    """

    id = serializers.IntegerField(read_only=True)
    user_id = serializers.IntegerField(read_only=True)
    meal_type = serializers.ChoiceField(choices=MealType.choices)
    description = serializers.CharField(
        max_length=DESCRIPTION_MAX_LENGTH, allow_blank=True, required=False, help_text="Free text."
    )
    calories = _nutrient("calories", "Energy in kcal (0-10,000).")
    protein_g = _nutrient("protein_g", "Protein in grams (0-1,000).")
    carbs_g = _nutrient("carbs_g", "Carbohydrates in grams (0-1,000).")
    fat_g = _nutrient("fat_g", "Fat in grams (0-1,000).")
    water_ml = _nutrient("water_ml", "Water in millilitres (0-10,000); required for meal_type 'water'.")
    logged_at = serializers.DateTimeField(
        required=False,
        help_text="When it was eaten or drunk (ISO 8601 with offset). Defaults to now; "
        "at most 5 minutes in the future.",
    )
    source = serializers.ChoiceField(
        choices=Source.choices,
        required=False,
        help_text="Where the entry comes from; default `manual`. Cannot be changed later.",
    )
    external_id = serializers.CharField(
        max_length=EXTERNAL_ID_MAX_LENGTH,
        allow_null=True,
        required=False,
        help_text="The client's own id for the entry. Posting the same (source, external_id) "
        "again returns the stored entry (200) instead of a duplicate. Cannot be changed later.",
    )
    created_at = serializers.DateTimeField(read_only=True)


NUTRITION_LOG_FIELDS = (
    "id",
    "user_id",
    "meal_type",
    "description",
    "calories",
    "protein_g",
    "carbs_g",
    "fat_g",
    "water_ml",
    "logged_at",
    "source",
    "external_id",
    "created_at",
)


def nutrition_log_as_dict(log: NutritionLog) -> dict:
    """``NutritionLogSerializer(log).data`` without building a serializer per entry
    (tests hold the two equal)."""
    row = {name: getattr(log, name) for name in NUTRITION_LOG_FIELDS}
    row["logged_at"] = iso_datetime(row["logged_at"])
    row["created_at"] = iso_datetime(row["created_at"])
    return row


class NutritionLogListQuerySerializer(serializers.Serializer):
    meal_type = serializers.ChoiceField(
        choices=MealType.choices, required=False, help_text="Only logs of this meal type."
    )
    since = serializers.DateTimeField(required=False, help_text="Logged at or after (inclusive).")
    until = serializers.DateTimeField(required=False, help_text="Logged before (exclusive).")

    def validate(self, attrs):
        since, until = attrs.get("since"), attrs.get("until")
        if since is not None and until is not None and until <= since:
            raise serializers.ValidationError({"until": ["Must be later than since."]})
        return attrs


class NutritionSummaryQuerySerializer(serializers.Serializer):
    days = serializers.IntegerField(
        min_value=1,
        max_value=SUMMARY_MAX_DAYS,
        default=7,
        help_text=f"Local days to cover, today included (1-{SUMMARY_MAX_DAYS}, default 7).",
    )


class NutritionDaySerializer(serializers.Serializer):
    date = serializers.DateField(help_text="The local day in the user's time zone.")
    calories = serializers.FloatField(help_text="kcal")
    protein_g = serializers.FloatField()
    carbs_g = serializers.FloatField()
    fat_g = serializers.FloatField()
    water_ml = serializers.FloatField()
    entries = serializers.IntegerField(help_text="Logs that day; 0 for a day with none.")


class NutritionSummarySerializer(serializers.Serializer):
    """Daily totals per local day.

    `daily` has one row for every day of the window, oldest first: a day without
    entries is all zeros with `entries` 0, and a nutrient not logged on a day counts as
    0. Totals are rounded to one decimal.
    """

    user_id = serializers.IntegerField()
    days = serializers.IntegerField()
    timezone = serializers.CharField(help_text="The user's IANA time zone that defines a day.")
    start_date = serializers.DateField(help_text="First local day of the window.")
    end_date = serializers.DateField(help_text="Last local day of the window (today).")
    cached = serializers.BooleanField(
        help_text="Served from the cache (still current: any write refreshes it)."
    )
    daily = NutritionDaySerializer(many=True)
