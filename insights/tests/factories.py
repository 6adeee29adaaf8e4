from __future__ import annotations

import factory
from django.utils import timezone

from insights.models import HealthInsight, Severity


class HealthInsightFactory(factory.django.DjangoModelFactory):
    """An engine-made insight (no author) for today; codes differ so several fit the
    one-per-(user, code, day) rule for engine insights."""

    class Meta:
        model = HealthInsight

    user = factory.SubFactory("users.tests.factories.UserFactory")
    code = factory.Sequence(lambda n: f"rule_{n}")
    category = "activity"
    title = factory.Sequence(lambda n: f"Insight {n}")
    description = "Your daily steps are below 5,000."
    reasoning = "Average of 4,120 steps over 30 days."
    action_steps = factory.LazyFunction(lambda: ["Take a 10-minute walk after lunch."])
    evidence = factory.LazyFunction(lambda: {"average_steps": 4120, "days": 30})
    severity = Severity.MEDIUM
    score = 0.6
    rank = 1
    related_metric_type = "steps"
    insight_date = factory.LazyFunction(timezone.localdate)
