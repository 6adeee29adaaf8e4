"""The benchmark's data set (scripts/bench_insights.py) stays loadable and meaningful."""

import pytest

from insights import services
from insights.models import HealthInsight
from metrics.models import HealthMetric
from nutrition.models import NutritionLog
from scripts.bench_insights import seed_benchmark_dataset
from users.models import User

pytestmark = pytest.mark.django_db


def test_seeded_people_get_insights():
    counts = seed_benchmark_dataset(users=40, days=6, seed=7)
    people = list(User.objects.filter(username__startswith="bench-").values_list("pk", flat=True))
    assert len(people) == 40
    assert counts["metrics"] == HealthMetric.objects.count()
    assert counts["nutrition_logs"] == NutritionLog.objects.count()
    with_data = HealthMetric.objects.values("user_id").distinct().count()
    # About ten samples and four logs per person-day (7 calendar days touched, today partial).
    assert 8 * 6 * with_data <= counts["metrics"] <= 11 * 7 * with_data
    assert counts["nutrition_logs"] == 4 * 6 * NutritionLog.objects.values("user_id").distinct().count()
    result = services.insights_compute_batch(user_ids=people, days=30)
    assert result.users == 40 and not result.failed
    codes = set(HealthInsight.objects.values_list("code", flat=True))
    assert {"low_steps", "insufficient_sleep", "missing_data"} <= codes
