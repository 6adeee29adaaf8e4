"""Normalized records that the format parsers (FHIR, Apple Health) produce.

Pure Python, no ORM. Each record maps 1:1 onto what the write side takes:

* ``MetricSample.as_ingest()`` is one sample of the metrics bulk-ingest body
  ``{metric_type, value, secondary_value, unit, recorded_at, source, external_id, notes}``;
* ``NutritionEntry.as_log_fields()`` is the field set of one ``NutritionLog``.

``recorded_at`` / ``logged_at`` are timezone-aware ``datetime`` objects on the
dataclasses (never naive), and ISO 8601 strings with their offset in the dict forms.
Values are already converted to the canonical unit of their metric type
(``metrics.registry``); ``unit`` says which.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class MetricSample:
    metric_type: str
    value: float
    unit: str
    recorded_at: datetime  # timezone-aware
    source: str
    external_id: str | None
    secondary_value: float | None = None
    notes: str = ""

    def __post_init__(self) -> None:
        if self.recorded_at.tzinfo is None or self.recorded_at.utcoffset() is None:
            raise ValueError("recorded_at must be timezone-aware")

    def as_ingest(self) -> dict[str, Any]:
        """One sample of the metrics bulk-ingest body (``recorded_at`` as ISO 8601)."""
        return {
            "metric_type": self.metric_type,
            "value": self.value,
            "secondary_value": self.secondary_value,
            "unit": self.unit,
            "recorded_at": self.recorded_at.isoformat(),
            "source": self.source,
            "external_id": self.external_id,
            "notes": self.notes,
        }


@dataclass(frozen=True, slots=True)
class NutritionEntry:
    meal_type: str
    logged_at: datetime  # timezone-aware
    source: str
    external_id: str | None
    description: str = ""
    calories: float | None = None
    protein_g: float | None = None
    carbs_g: float | None = None
    fat_g: float | None = None
    water_ml: float | None = None

    def __post_init__(self) -> None:
        if self.logged_at.tzinfo is None or self.logged_at.utcoffset() is None:
            raise ValueError("logged_at must be timezone-aware")

    def as_log_fields(self) -> dict[str, Any]:
        """The fields of one nutrition log (``logged_at`` as ISO 8601)."""
        return {
            "meal_type": self.meal_type,
            "description": self.description,
            "calories": self.calories,
            "protein_g": self.protein_g,
            "carbs_g": self.carbs_g,
            "fat_g": self.fat_g,
            "water_ml": self.water_ml,
            "logged_at": self.logged_at.isoformat(),
            "source": self.source,
            "external_id": self.external_id,
        }


@dataclass(frozen=True, slots=True)
class EntryError:
    """Why one entry of an input document could not be mapped; the same shape as the
    bulk-ingest report's errors. ``field`` is a path inside the entry."""

    index: int
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "message": self.message}


def range_problem(
    metric_type, value: float, *, secondary: bool = False, show_value: bool = True
) -> str | None:
    """A sentence if ``value`` (canonical unit) is outside the registry's range, else None.
    Without ``show_value`` the sentence omits the value, so that reasons group.

    The parsers check ranges only to give a precise message next to the entry; the
    metrics bulk-ingest service stays the authority on what is stored.
    """
    low, high = (
        (metric_type.secondary_min, metric_type.secondary_max)
        if secondary
        else (metric_type.min_value, metric_type.max_value)
    )
    if low is None or high is None or low <= value <= high:
        return None
    label = metric_type.secondary_label if secondary else metric_type.label.lower()
    unit = metric_type.canonical_unit
    what = f"{value:g} {unit} is" if show_value else "value"
    return f"{what} outside the valid range for {label} ({low:g} to {high:g} {unit})."
