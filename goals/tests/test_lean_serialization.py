"""List routes build their rows by hand; they must equal what the serializer says."""

import datetime

import pytest
from django.utils import timezone

from goals.serializers import HealthGoalSerializer, goal_as_dict
from goals.tests.factories import HealthGoalFactory, WeightLossGoalFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "make",
    [
        lambda: HealthGoalFactory(),
        lambda: WeightLossGoalFactory(target_date=datetime.date(2030, 1, 1)),
        lambda: HealthGoalFactory(status="completed", completed_at=timezone.now(), start_value=None),
    ],
)
def test_hand_built_row_equals_the_serializer(make):
    goal = make()
    goal.refresh_from_db()
    assert goal_as_dict(goal) == dict(HealthGoalSerializer(goal).data)
