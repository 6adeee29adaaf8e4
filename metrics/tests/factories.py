from __future__ import annotations

import datetime

import factory
from django.utils import timezone

from metrics.models import HealthMetric, Source
from metrics.registry import METRIC_TYPES


class HealthMetricFactory(factory.django.DjangoModelFactory):
    """A stored sample, in the canonical unit of its type (steps by default)."""

    class Meta:
        model = HealthMetric

    user = factory.SubFactory("users.tests.factories.UserFactory")
    metric_type = "steps"
    value = 4200.0
    secondary_value = None
    unit = factory.LazyAttribute(lambda o: METRIC_TYPES[o.metric_type].canonical_unit)
    recorded_at = factory.LazyFunction(lambda: timezone.now() - datetime.timedelta(hours=1))
    source = Source.MANUAL
    external_id = None
    notes = ""


def BloodPressureFactory(**kwargs) -> HealthMetric:
    return HealthMetricFactory(
        metric_type="blood_pressure", value=kwargs.pop("value", 120.0), secondary_value=80.0, **kwargs
    )
