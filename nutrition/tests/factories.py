from __future__ import annotations

import datetime

import factory
from django.utils import timezone

from nutrition.models import MealType, NutritionLog


class NutritionLogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = NutritionLog

    user = factory.SubFactory("users.tests.factories.UserFactory")
    meal_type = MealType.LUNCH
    description = "Lentil soup and bread"
    calories = 550.0
    protein_g = 25.0
    carbs_g = 80.0
    fat_g = 12.0
    water_ml = None
    logged_at = factory.LazyFunction(lambda: timezone.now() - datetime.timedelta(hours=1))


class WaterLogFactory(NutritionLogFactory):
    meal_type = MealType.WATER
    description = ""
    calories = None
    protein_g = None
    carbs_g = None
    fat_g = None
    water_ml = 250.0
