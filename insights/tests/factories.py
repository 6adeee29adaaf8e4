from __future__ import annotations

import factory
from django.utils import timezone

from insights.models import HealthInsight, Severity


class HealthInsightFactory(factory.django.DjangoModelFactory):
    """An engine-made insight (no author) for today."""

    class Meta:
        model = HealthInsight

    user = factory.SubFactory("users.tests.factories.UserFactory")
    code = factory.Sequence(lambda n: f"rule_{n}")
    category = "activity"
    title = factory.Sequence(lambda n: f"Insight {n}")
    description = "Something worth knowing."
    reasoning = "Your average was 3,150 steps a day over 24 days (threshold 5,000)."
    action_steps = factory.LazyFunction(lambda: ["Take a 10-minute walk after lunch"])
    evidence = factory.LazyFunction(lambda: {"metric": "steps", "average": 3150})
    severity = Severity.MEDIUM
    score = 0.5
    rank = 1
    insight_date = factory.LazyFunction(timezone.localdate)
