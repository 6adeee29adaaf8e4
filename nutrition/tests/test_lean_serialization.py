"""List routes build their rows by hand; they must equal what the serializer says."""

import pytest

from nutrition.serializers import NutritionLogSerializer, nutrition_log_as_dict
from nutrition.tests.factories import NutritionLogFactory, WaterLogFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("factory", [NutritionLogFactory, WaterLogFactory])
def test_hand_built_row_equals_the_serializer(factory):
    log = factory(external_id="ext-1", source="apple_health")
    log.refresh_from_db()
    assert nutrition_log_as_dict(log) == dict(NutritionLogSerializer(log).data)
