"""Meals and water: one row per entry."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from metrics.models import Source

NUTRIENT_FIELDS = ("calories", "protein_g", "carbs_g", "fat_g", "water_ml")


class MealType(models.TextChoices):
    BREAKFAST = "breakfast"
    LUNCH = "lunch"
    DINNER = "dinner"
    SNACK = "snack"
    WATER = "water"


class NutritionLog(models.Model):
    """A meal, snack or drink. Carries calories, a macro or water (at least one)."""

    # No index of its own: every index below starts with the user.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="nutrition_logs", db_index=False
    )
    meal_type = models.CharField(max_length=16, choices=MealType.choices)
    description = models.CharField(max_length=500, blank=True, default="")
    calories = models.FloatField(null=True, blank=True)
    protein_g = models.FloatField(null=True, blank=True)
    carbs_g = models.FloatField(null=True, blank=True)
    fat_g = models.FloatField(null=True, blank=True)
    water_ml = models.FloatField(null=True, blank=True)
    logged_at = models.DateTimeField()
    source = models.CharField(max_length=32, choices=Source.choices, default=Source.MANUAL)
    external_id = models.CharField(max_length=128, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-logged_at", "-id"]
        # In the list's exact order (id breaks ties): a page comes straight off the index.
        indexes = [models.Index(fields=["user", "-logged_at", "-id"], name="nutrition_user_time")]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "source", "external_id"],
                condition=models.Q(external_id__isnull=False),
                name="nutrition_unique_external_id",
            ),
            models.CheckConstraint(
                condition=models.Q(calories__isnull=False)
                | models.Q(protein_g__isnull=False)
                | models.Q(carbs_g__isnull=False)
                | models.Q(fat_g__isnull=False)
                | models.Q(water_ml__isnull=False),
                name="nutrition_has_content",
            ),
            *[
                models.CheckConstraint(
                    condition=models.Q(**{f"{name}__gte": 0}) | models.Q(**{f"{name}__isnull": True}),
                    name=f"nutrition_{name}_non_negative",
                )
                for name in NUTRIENT_FIELDS
            ],
        ]

    def __str__(self) -> str:
        return f"{self.meal_type} @ {self.logged_at:%Y-%m-%d %H:%M}"
