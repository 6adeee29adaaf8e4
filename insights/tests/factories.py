from __future__ import annotations

import datetime

import factory

from insights.models import HealthInsight


class HealthInsightFactory(factory.django.DjangoModelFactory):
    """A stored recommendation (a low-steps one by default)."""

    class Meta:
        model = HealthInsight

    user = factory.SubFactory("users.tests.factories.UserFactory")
    code = "low_steps"
    category = "activity"
    title = "Move a little more"
    description = "Your daily steps are below 5,000."
    reasoning = "Average of 4,120 steps over 30 days."
    action_steps = factory.LazyFunction(lambda: ["Take a 10-minute walk after lunch."])
    evidence = factory.LazyFunction(lambda: {"average_steps": 4120, "days": 30})
    severity = "medium"
    score = 0.6
    rank = 1
    related_metric_type = "steps"
    insight_date = datetime.date(2024, 3, 1)
