"""Test data of the interop tests. Rows are made with the owning apps' factories
(metrics, nutrition, goals, insights, healthtrack); only the export-specific defaults
live here."""

from __future__ import annotations

import datetime

import factory

from metrics.tests.factories import HealthMetricFactory

BASE_TIME = datetime.datetime(2024, 3, 1, 8, 0, tzinfo=datetime.UTC)

# One plausible sample per metric type, in the canonical unit.
SAMPLE_VALUES = {
    "heart_rate": (72.0, None, "bpm"),
    "resting_heart_rate": (58.0, None, "bpm"),
    "steps": (8432.0, None, "count"),
    "sleep": (7.25, None, "h"),
    "weight": (68.4, None, "kg"),
    "blood_pressure": (121.0, 79.0, "mmHg"),
    "blood_glucose": (96.0, None, "mg/dL"),
    "exercise": (35.0, None, "min"),
    "oxygen_saturation": (97.5, None, "%"),
    "body_temperature": (36.7, None, "°C"),
}


class ExportMetricFactory(HealthMetricFactory):
    """A heart rate by default, any type with its SAMPLE_VALUES, recorded a minute after
    the previous one from BASE_TIME: exports are ordered by time, tests compare values."""

    metric_type = "heart_rate"
    value = factory.LazyAttribute(lambda o: SAMPLE_VALUES[o.metric_type][0])
    secondary_value = factory.LazyAttribute(lambda o: SAMPLE_VALUES[o.metric_type][1])
    recorded_at = factory.Sequence(lambda n: BASE_TIME + datetime.timedelta(minutes=n))
