"""The one registry of metric types: canonical unit, accepted input units, valid range.

Pure Python, no ORM: used by validation, summaries, the insights engine, FHIR and the
Apple Health import alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum


class DailyAggregate(StrEnum):
    """How a day's samples of a type become one number."""

    SUM = "sum"  # steps, exercise minutes, sleep hours (a night counts on the day it ends)
    AVG = "avg"  # heart rate, blood pressure, glucose, SpO2, temperature
    LATEST = "latest"  # weight


def _identity(value: float) -> float:
    return value


@dataclass(frozen=True)
class MetricType:
    code: str
    label: str
    canonical_unit: str
    min_value: float
    max_value: float
    daily_aggregate: DailyAggregate
    # Accepted input units (canonical included) and how each converts to canonical.
    units: dict[str, Callable[[float], float]] = field(default_factory=dict)
    # Blood pressure carries its diastolic value here.
    secondary_label: str | None = None
    secondary_min: float | None = None
    secondary_max: float | None = None
    decimals: int = 1

    @property
    def requires_secondary(self) -> bool:
        return self.secondary_label is not None

    def accepted_units(self) -> list[str]:
        return sorted(self.units)

    def to_canonical(self, value: float, unit: str | None) -> float:
        """Convert ``value`` given in ``unit`` (None: canonical) to the canonical unit."""
        if unit is None or unit == self.canonical_unit:
            return value
        return self.units[normalize_unit(unit, self)](value)


def _units(canonical: str, **others: Callable[[float], float]) -> dict[str, Callable[[float], float]]:
    return {canonical: _identity, **others}


def _pounds_to_kg(value: float) -> float:
    return value * 0.45359237


def _minutes_to_hours(value: float) -> float:
    return value / 60


def _hours_to_minutes(value: float) -> float:
    return value * 60


def _mmol_to_mg_dl(value: float) -> float:
    return value * 18.016  # glucose: 180.16 g/mol


def _fahrenheit_to_celsius(value: float) -> float:
    return (value - 32) * 5 / 9


def _kpa_to_mmhg(value: float) -> float:
    return value * 7.500617


def _fraction_to_percent(value: float) -> float:
    return value * 100


METRIC_TYPES: dict[str, MetricType] = {
    t.code: t
    for t in (
        MetricType(
            "heart_rate", "Heart rate", "bpm", 20, 250, DailyAggregate.AVG,
            _units("bpm", **{"/min": _identity, "beats/min": _identity}), decimals=0,
        ),
        MetricType(
            "resting_heart_rate", "Resting heart rate", "bpm", 20, 250, DailyAggregate.AVG,
            _units("bpm", **{"/min": _identity, "beats/min": _identity}), decimals=0,
        ),
        MetricType(
            "steps", "Steps", "count", 0, 100_000, DailyAggregate.SUM,
            _units("count", steps=_identity), decimals=0,
        ),
        MetricType(
            "sleep", "Sleep", "h", 0, 24, DailyAggregate.SUM,
            _units("h", hours=_identity, hr=_identity, min=_minutes_to_hours, minutes=_minutes_to_hours),
            decimals=2,
        ),
        MetricType(
            "weight", "Weight", "kg", 2, 500, DailyAggregate.LATEST,
            _units("kg", lb=_pounds_to_kg, lbs=_pounds_to_kg),
        ),
        MetricType(
            "blood_pressure", "Blood pressure", "mmHg", 50, 260, DailyAggregate.AVG,
            _units("mmHg", kPa=_kpa_to_mmhg),
            secondary_label="diastolic", secondary_min=30, secondary_max=180, decimals=0,
        ),
        MetricType(
            "blood_glucose", "Blood glucose", "mg/dL", 10, 1000, DailyAggregate.AVG,
            _units("mg/dL", **{"mmol/L": _mmol_to_mg_dl}), decimals=0,
        ),
        MetricType(
            "exercise", "Exercise", "min", 0, 1440, DailyAggregate.SUM,
            _units("min", minutes=_identity, h=_hours_to_minutes, hours=_hours_to_minutes), decimals=0,
        ),
        MetricType(
            "oxygen_saturation", "Oxygen saturation", "%", 50, 100, DailyAggregate.AVG,
            _units("%", fraction=_fraction_to_percent), decimals=1,
        ),
        MetricType(
            "body_temperature", "Body temperature", "°C", 30, 45, DailyAggregate.AVG,
            _units("°C", C=_identity, degC=_identity, Cel=_identity, **{"°F": _fahrenheit_to_celsius,
                   "F": _fahrenheit_to_celsius, "degF": _fahrenheit_to_celsius}),
            decimals=1,
        ),
    )
}  # fmt: skip

METRIC_TYPE_CHOICES = [(t.code, t.label) for t in METRIC_TYPES.values()]


def get_metric_type(code: str) -> MetricType | None:
    return METRIC_TYPES.get(code)


def normalize_unit(unit: str, metric_type: MetricType) -> str:
    """Match ``unit`` to an accepted unit of ``metric_type``, ignoring case; KeyError if none."""
    if unit in metric_type.units:
        return unit
    lowered = unit.strip().lower()
    for accepted in metric_type.units:
        if accepted.lower() == lowered:
            return accepted
    raise KeyError(unit)
