"""The rules a metric sample must follow, in plain Python, driven by ``metrics.registry``.

One function, ``sample_clean``, is the only place these rules live. The single-sample
serializer, the update service and bulk ingest all call it, so the three can never
disagree; and it is lean enough (no DRF field machinery) to validate a 1,000-sample
batch in a few milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from healthtrack.serializers import unstorable_text
from metrics.models import HealthMetric, Source
from metrics.registry import METRIC_TYPES, MetricType, normalize_unit

BULK_MAX_SAMPLES = 1000
MAX_FUTURE = timedelta(minutes=5)
EARLIEST_RECORDED_AT = datetime(1900, 1, 1, tzinfo=UTC)
EXTERNAL_ID_MAX_LENGTH = HealthMetric._meta.get_field("external_id").max_length
NOTES_MAX_LENGTH = 2000
# Converted values are rounded so that 98.6 °F is stored as 37.0 °C, not 37.00000000000001.
CONVERTED_DECIMALS = 6

SAMPLE_FIELDS = (
    "metric_type",
    "value",
    "secondary_value",
    "unit",
    "recorded_at",
    "source",
    "external_id",
    "notes",
)
# Read-only fields of the representation: accepted and ignored, so a client may send
# back what it got. ``user_id`` only when it names the sample's owner.
IGNORED_FIELDS = ("id", "created_at", "user_id")
KNOWN_FIELDS = frozenset(SAMPLE_FIELDS + IGNORED_FIELDS)
IMMUTABLE_FIELDS = ("source", "external_id")

SOURCES = frozenset(Source.values)
TYPE_CHOICES_TEXT = ", ".join(METRIC_TYPES)
SOURCE_CHOICES_TEXT = ", ".join(Source.values)
NON_FIELD = "non_field_errors"

FieldError = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Reading:
    """A number as given (for messages) and the unit it was given in."""

    raw: float
    unit: str
    from_request: bool


def _number(raw: Any) -> float:
    """A finite float from a JSON number or a numeric string; ValueError otherwise."""
    if isinstance(raw, bool):
        raise ValueError("A number is required, not a boolean.")
    if isinstance(raw, int | float):
        try:
            value = float(raw)
        except OverflowError:
            raise ValueError("The number is too large.") from None
    elif isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError("A number is required.") from None
    else:
        raise ValueError("A number is required.")
    if not math.isfinite(value):
        raise ValueError("A finite number is required.")
    return value


def parse_timestamp(raw: Any, *, naive_as_utc: bool = False) -> datetime:
    """An aware UTC datetime from an ISO 8601 string; ValueError with a reason otherwise."""
    if not isinstance(raw, str):
        raise ValueError("An ISO 8601 date-time string is required, e.g. 2026-03-10T07:30:00+01:00.")
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ValueError(
            f"{echo(raw)} is not an ISO 8601 date-time; use e.g. 2026-03-10T07:30:00+01:00 or ...Z."
        ) from None
    if value.tzinfo is None or value.utcoffset() is None:
        if not naive_as_utc:
            raise ValueError(
                "Include a UTC offset (e.g. 2026-03-10T07:30:00+01:00 or 2026-03-10T06:30:00Z): "
                "without one the moment is ambiguous."
            )
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-01:00 is in year 10000 in UTC
        raise ValueError("Out of the supported range of date-times.") from None


def echo(value: Any, limit: int = 40) -> str:
    """A client's value quoted in an error message, cut short: never echo a megabyte."""
    text = value if isinstance(value, str) else repr(value)
    return f"'{text}'" if len(text) <= limit else f"'{text[:limit]}...'"


def _g(value: float) -> str:
    return f"{value:g}"


def _range_text(low: float, high: float, unit: str) -> str:
    return f"between {_g(low)} and {_g(high)} {unit}"


def _unit_error(unit: Any, metric_type: MetricType) -> str:
    return (
        f"{echo(unit)} is not a unit of {metric_type.code}; accepted (case-insensitive): "
        f"{', '.join(metric_type.accepted_units())}."
    )


def _convert(
    field: str,
    reading: Reading,
    metric_type: MetricType,
    low: float,
    high: float,
    what: str,
    errors: list[FieldError],
) -> float | None:
    """``reading`` in the canonical unit, or None after adding an error naming the range."""
    canonical = metric_type.canonical_unit
    if reading.unit == canonical:
        value = reading.raw
    else:
        value = round(metric_type.units[reading.unit](reading.raw), CONVERTED_DECIMALS)
    if low <= value <= high:
        return value
    message = f"{what} must be {_range_text(low, high, canonical)}"
    if reading.unit != canonical:
        message += f"; {_g(reading.raw)} {reading.unit} is {_g(value)} {canonical}"
    errors.append((field, message + "."))
    return None


def _reading(
    field: str,
    data: Mapping[str, Any],
    instance: HealthMetric | None,
    input_unit: str | None,
    metric_type: MetricType,
    errors: list[FieldError],
) -> Reading | None:
    """The number for ``field``: from the request (in ``input_unit``) or, on update, the
    stored one (in its stored unit, which the possibly new type must accept)."""
    if field in data:
        raw = data[field]
        if raw is None:
            return None
        try:
            number = _number(raw)
        except ValueError as error:
            errors.append((field, str(error)))
            return None
        return Reading(number, input_unit or metric_type.canonical_unit, True)
    stored = getattr(instance, field) if instance is not None else None
    if stored is None:
        return None
    try:
        unit = normalize_unit(instance.unit, metric_type)
    except KeyError:
        errors.append(
            (
                field,
                f"The stored {field} is in {instance.unit}, which {metric_type.code} does not accept; "
                f"send {field} (and unit) for the new metric_type.",
            )
        )
        return None
    return Reading(stored, unit, False)


def sample_clean(
    data: Any,
    *,
    user_id: int,
    now: datetime,
    instance: HealthMetric | None = None,
    partial: bool = False,
) -> tuple[dict[str, Any] | None, list[FieldError]]:
    """Validate one sample; return ``(fields, [])`` or ``(None, [(field, message), ...])``.

    ``fields`` holds every model field of the sample, the values converted to the
    canonical unit of the type. On create, ``metric_type`` and ``value`` are required,
    ``unit`` defaults to the canonical unit, ``recorded_at`` to ``now``, ``source`` to
    ``manual``. On update (``instance``), fields left out keep their stored values and
    the whole sample is checked again (a new ``metric_type`` re-checks the unit and
    range of the stored value); ``partial`` (PATCH) makes ``metric_type`` and ``value``
    optional. ``unit`` describes the values sent with it. ``source`` and ``external_id``
    are the sample's sync identity and cannot change after creation.
    """
    if not isinstance(data, Mapping):
        return None, [(NON_FIELD, "Expected a JSON object with the fields of a sample.")]
    errors: list[FieldError] = []
    for name in data:
        if name not in KNOWN_FIELDS:
            errors.append((name, "Unknown field; it cannot be set."))
    if "user_id" in data and data["user_id"] != user_id:
        errors.append(
            ("user_id", "The owner is set with the user_id query parameter, not in the body; omit it.")
        )

    # --- metric_type -------------------------------------------------------------
    metric_type: MetricType | None = None
    if "metric_type" in data:
        code = data["metric_type"]
        metric_type = METRIC_TYPES.get(code) if isinstance(code, str) else None
        if metric_type is None:
            errors.append(
                ("metric_type", f"{echo(code)} is not a metric type; choose one of: {TYPE_CHOICES_TEXT}.")
            )
    elif instance is not None and partial:
        metric_type = METRIC_TYPES[instance.metric_type]
    else:
        errors.append(("metric_type", f"This field is required; choose one of: {TYPE_CHOICES_TEXT}."))

    # --- unit, value, secondary_value --------------------------------------------
    value = secondary_value = None
    if metric_type is None and "value" not in data and (instance is None or not partial):
        errors.append(("value", "This field is required."))
    if metric_type is not None:
        input_unit: str | None = None
        unit_ok = True
        raw_unit = data.get("unit")
        if raw_unit is not None:
            if not isinstance(raw_unit, str):
                errors.append(("unit", _unit_error(raw_unit, metric_type)))
                unit_ok = False
            else:
                try:
                    input_unit = normalize_unit(raw_unit, metric_type)
                except KeyError:
                    errors.append(("unit", _unit_error(raw_unit, metric_type)))
                    unit_ok = False
            if unit_ok and instance is not None and "value" not in data and "secondary_value" not in data:
                errors.append(
                    (
                        "unit",
                        "Send unit together with value: it says what unit the values sent with it "
                        f"are in (stored values are in {metric_type.canonical_unit}).",
                    )
                )
        if unit_ok:
            if "value" not in data and (instance is None or not partial):
                bounds = _range_text(metric_type.min_value, metric_type.max_value, metric_type.canonical_unit)
                errors.append(("value", f"This field is required: a number {bounds}."))
            elif "value" in data and data["value"] is None:
                errors.append(("value", "This field may not be null."))
            else:
                reading = _reading("value", data, instance, input_unit, metric_type, errors)
                if reading is not None:
                    value = _convert(
                        "value",
                        reading,
                        metric_type,
                        metric_type.min_value,
                        metric_type.max_value,
                        "systolic (value)" if metric_type.requires_secondary else metric_type.code,
                        errors,
                    )
            # A stored diastolic value does not survive a change to a type without one.
            secondary = (
                _reading("secondary_value", data, instance, input_unit, metric_type, errors)
                if metric_type.requires_secondary or "secondary_value" in data
                else None
            )
            if metric_type.requires_secondary:
                low, high = metric_type.secondary_min, metric_type.secondary_max
                if secondary is None:
                    if not any(field == "secondary_value" for field, _ in errors):
                        errors.append(
                            (
                                "secondary_value",
                                f"Required for {metric_type.code}: the {metric_type.secondary_label} "
                                f"pressure, {_range_text(low, high, metric_type.canonical_unit)}.",
                            )
                        )
                else:
                    label = f"{metric_type.secondary_label} (secondary_value)"
                    secondary_value = _convert(
                        "secondary_value", secondary, metric_type, low, high, label, errors
                    )
                    if value is not None and secondary_value is not None and secondary_value >= value:
                        unit = metric_type.canonical_unit
                        errors.append(
                            (
                                "secondary_value",
                                f"{metric_type.secondary_label.capitalize()} ({_g(secondary_value)} {unit}) "
                                f"must be lower than systolic ({_g(value)} {unit}).",
                            )
                        )
            elif secondary is not None:
                errors.append(
                    (
                        "secondary_value",
                        f"{metric_type.code} has no secondary value; omit it or send null "
                        "(only blood_pressure uses it, for the diastolic pressure).",
                    )
                )

    # --- recorded_at ---------------------------------------------------------------
    recorded_at = instance.recorded_at if instance is not None else now
    if "recorded_at" in data:
        try:
            recorded_at = parse_timestamp(data["recorded_at"])
        except ValueError as error:
            errors.append(("recorded_at", str(error)))
        else:
            if recorded_at > now + MAX_FUTURE:
                errors.append(
                    (
                        "recorded_at",
                        "Must not be more than 5 minutes in the future "
                        f"(server time is {now.isoformat(timespec='seconds')}).",
                    )
                )
            elif recorded_at < EARLIEST_RECORDED_AT:
                errors.append(("recorded_at", "Must be on or after 1900-01-01T00:00:00Z."))

    # --- source, external_id (the sync identity) ------------------------------------
    source = instance.source if instance is not None else Source.MANUAL.value
    if "source" in data:
        raw_source = data["source"]
        if not isinstance(raw_source, str) or raw_source not in SOURCES:
            errors.append(
                ("source", f"{echo(raw_source)} is not a source; choose one of: {SOURCE_CHOICES_TEXT}.")
            )
        else:
            source = raw_source

    external_id = instance.external_id if instance is not None else None
    if "external_id" in data:
        raw_id = data["external_id"]
        if raw_id is None or raw_id == "":
            external_id = None
        elif isinstance(raw_id, int) and not isinstance(raw_id, bool):
            external_id = str(raw_id)
        elif isinstance(raw_id, str):
            external_id = raw_id
        else:
            errors.append(("external_id", "A string (the client's own id of the sample) is required."))
        if external_id is not None and len(external_id) > EXTERNAL_ID_MAX_LENGTH:
            errors.append(
                (
                    "external_id",
                    f"Must be at most {EXTERNAL_ID_MAX_LENGTH} characters (got {len(external_id)}).",
                )
            )
        elif external_id is not None and (reason := unstorable_text(external_id)):
            errors.append(("external_id", reason))

    if instance is not None:
        for field, new in (("source", source), ("external_id", external_id)):
            if new != getattr(instance, field):
                errors.append((field, "Cannot be changed after creation: it is the sample's sync identity."))

    # --- notes ---------------------------------------------------------------------
    notes = instance.notes if instance is not None else ""
    if "notes" in data:
        raw_notes = data["notes"]
        if raw_notes is None:
            notes = ""
        elif not isinstance(raw_notes, str):
            errors.append(("notes", "A string is required."))
        elif len(raw_notes) > NOTES_MAX_LENGTH:
            errors.append(("notes", f"Must be at most {NOTES_MAX_LENGTH} characters (got {len(raw_notes)})."))
        elif reason := unstorable_text(raw_notes):
            errors.append(("notes", reason))
        else:
            notes = raw_notes

    if errors:
        return None, errors
    return {
        "metric_type": metric_type.code,
        "value": value,
        "secondary_value": secondary_value,
        "unit": metric_type.canonical_unit,
        "recorded_at": recorded_at,
        "source": source,
        "external_id": external_id,
        "notes": notes,
    }, []


def errors_as_dict(errors: list[FieldError]) -> dict[str, list[str]]:
    """``[(field, message)]`` as the ``{field: [messages]}`` of a 400 body."""
    grouped: dict[str, list[str]] = {}
    for field, message in errors:
        grouped.setdefault(field, []).append(message)
    return grouped
