"""Apple Health ``export.xml`` → normalized metric samples and nutrition entries.

Pure Python, no ORM. The file (or the ``export.zip`` the Health app makes, read from
its ``apple_health_export/export.xml`` member without unpacking) is stream-parsed with
``xml.etree.ElementTree.iterparse``; every top-level element is dropped as soon as it has
been handled, so memory stays flat however many records the export holds. What is kept
in memory grows with the number of *days*, not records: the per-day step, sleep and
dietary accumulators.

Shape of the file (HealthKit export, DTD in its own prolog)::

    <HealthData locale="en_US">
      <ExportDate value="2024-03-02 09:00:00 +0100"/>
      <Me HKCharacteristicTypeIdentifierDateOfBirth="..." .../>
      <Record type="HKQuantityTypeIdentifierHeartRate" sourceName="Apple Watch" unit="count/min"
              creationDate="..." startDate="2024-03-01 08:00:00 +0100" endDate="..." value="62"/>
      <Correlation type="HKCorrelationTypeIdentifierBloodPressure" ...>
        <Record type="HKQuantityTypeIdentifierBloodPressureSystolic" .../>
        <Record type="HKQuantityTypeIdentifierBloodPressureDiastolic" .../>
      </Correlation>
      <Workout workoutActivityType="HKWorkoutActivityTypeRunning" duration="30" durationUnit="min" .../>
    </HealthData>

Apple's DTD says every Record inside a Correlation also appears at the top level, so
blood pressure is read from its correlation only (the loose systolic/diastolic records
are skipped) and nutrients from the top level only (food correlations are skipped):
nothing is counted twice. docs/interop.md has the full mapping and aggregation rules.
"""

from __future__ import annotations

import hashlib
import os
import re

# xml.etree on expat >= 2.4: external entities are never fetched and entity expansion
# ("billion laughs") is capped by expat itself; interop/tests checks both.
import xml.etree.ElementTree as ET
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import IO, Any

from interop.records import MetricSample, NutritionEntry, range_problem
from metrics.registry import METRIC_TYPES

APPLE_HEALTH_SOURCE = "apple_health"
EXPORT_MEMBER = "apple_health_export/export.xml"

HK = "HKQuantityTypeIdentifier"
SLEEP_TYPE = "HKCategoryTypeIdentifierSleepAnalysis"
STEP_TYPE = f"{HK}StepCount"
BP_CORRELATION = "HKCorrelationTypeIdentifierBloodPressure"
BP_SYSTOLIC = f"{HK}BloodPressureSystolic"
BP_DIASTOLIC = f"{HK}BloodPressureDiastolic"

# Sleep analysis values that count as asleep (iOS 16+ stages, and the older single value).
ASLEEP_VALUES = frozenset(
    {
        "HKCategoryValueSleepAnalysisAsleep",
        "HKCategoryValueSleepAnalysisAsleepUnspecified",
        "HKCategoryValueSleepAnalysisAsleepCore",
        "HKCategoryValueSleepAnalysisAsleepDeep",
        "HKCategoryValueSleepAnalysisAsleepREM",
    }
)
# A night is the local day one wakes up on: asleep intervals ending between 18:00 the
# day before and 18:00 that day belong to it, so a night begun before midnight stays whole.
NIGHT_SHIFT = timedelta(hours=6)


def _scale(factor: float) -> Callable[[float], float]:
    return lambda value: value * factor


def _identity(value: float) -> float:
    return value


def _fraction_to_percent(value: float) -> float:
    # HealthKit exports SpO2 as a fraction with unit "%" (0.97 means 97 %); a value above 1
    # can only already be a percentage.
    return value * 100 if value <= 1 else value


# HealthKit unit strings accepted per type, with the conversion to the canonical unit.
_PER_MINUTE = {"count/min": _identity, "bpm": _identity}
QUANTITY_METRICS: dict[str, tuple[str, dict[str, Callable[[float], float]]]] = {
    f"{HK}HeartRate": ("heart_rate", _PER_MINUTE),
    f"{HK}RestingHeartRate": ("resting_heart_rate", _PER_MINUTE),
    f"{HK}BodyMass": (
        "weight",
        {"kg": _identity, "lb": _scale(0.45359237), "g": _scale(0.001), "st": _scale(6.35029318)},
    ),
    f"{HK}BloodGlucose": ("blood_glucose", {"mg/dL": _identity, "mmol/L": _scale(18.016)}),
    f"{HK}OxygenSaturation": ("oxygen_saturation", {"%": _fraction_to_percent}),
    f"{HK}BodyTemperature": (
        "body_temperature",
        {"degC": _identity, "degF": lambda value: (value - 32) * 5 / 9},
    ),
}
BP_UNITS = {"mmHg": _identity, "kPa": _scale(7.500617)}

# Dietary record type → (nutrition field, unit conversions to that field's unit).
DIETARY: dict[str, tuple[str, dict[str, Callable[[float], float]]]] = {
    f"{HK}DietaryWater": (
        "water_ml",
        {
            "mL": _identity,
            "L": _scale(1000),
            "fl_oz_us": _scale(29.5735295625),
            "fl_oz_imp": _scale(28.4130625),
            "cup_us": _scale(236.5882365),
        },
    ),
    f"{HK}DietaryEnergyConsumed": (
        "calories",
        {"kcal": _identity, "Cal": _identity, "kJ": _scale(1 / 4.184)},
    ),
    f"{HK}DietaryProtein": ("protein_g", {"g": _identity, "mg": _scale(0.001)}),
    f"{HK}DietaryCarbohydrates": ("carbs_g", {"g": _identity, "mg": _scale(0.001)}),
    f"{HK}DietaryFatTotal": ("fat_g", {"g": _identity, "mg": _scale(0.001)}),
}
FOOD_FIELDS = ("calories", "protein_g", "carbs_g", "fat_g")

# "mmol<180.1558800000541>/L": HealthKit names the molar mass of glucose in the unit.
_MOLAR_UNIT = re.compile(r"^mmol<(?P<molar_mass>[0-9.]+)>/L$")
_WORKOUT_DURATION_UNITS = {"min": 1.0, "s": 1 / 60, "h": 60.0}

# Bytes XML 1.0 forbids; some exports contain them (e.g. \x0b in source names).
_INVALID_XML_BYTES = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])


class AppleHealthFormatError(ValueError):
    """The upload is not a readable Apple Health export (not XML or zip, wrong root
    element, malformed XML at a position, over the size limit)."""


@dataclass
class AppleHealthSummary:
    """What an import read, produced and passed over, by type."""

    export_date: datetime | None = None
    records_read: int = 0
    metrics: Counter = field(default_factory=Counter)
    nutrition: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)  # (type, reason) → count

    def skip(self, record_type: str, reason: str) -> None:
        self.skipped[(record_type, reason)] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "export_date": self.export_date.isoformat() if self.export_date else None,
            "records_read": self.records_read,
            "metrics": dict(sorted(self.metrics.items())),
            "nutrition": dict(sorted(self.nutrition.items())),
            "skipped": [
                {"type": record_type, "reason": reason, "count": count}
                for (record_type, reason), count in sorted(
                    self.skipped.items(), key=lambda item: (-item[1], item[0])
                )
            ],
        }


class _Skip(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- Opening the upload ---------------------------------------------------------------


class _SanitizedReader:
    """Reads the XML stream for iterparse: drops bytes XML forbids and enforces a size cap.

    The forbidden bytes are all below 0x20, so they are never part of a multi-byte UTF-8
    sequence and can be removed byte-wise."""

    def __init__(self, stream: IO[bytes], max_bytes: int | None) -> None:
        self.stream = stream
        self.max_bytes = max_bytes
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.bytes_read += len(data)
        if self.max_bytes is not None and self.bytes_read > self.max_bytes:
            raise AppleHealthFormatError(f"export.xml is larger than the limit of {self.max_bytes} bytes.")
        return data.translate(None, _INVALID_XML_BYTES)


def _zip_member(archive: zipfile.ZipFile) -> str:
    names = archive.namelist()
    if EXPORT_MEMBER in names:
        return EXPORT_MEMBER
    for name in names:
        parts = name.split("/")
        if len(parts) <= 2 and parts[-1].lower() == "export.xml":
            return name
    raise AppleHealthFormatError(f"The zip has no {EXPORT_MEMBER}.")


@contextmanager
def open_export(source: str | os.PathLike | IO[bytes], *, max_xml_bytes: int | None = None):
    """The export's XML as a binary stream, from an ``export.xml`` or an ``export.zip``
    (a path or a seekable binary file). The zip member is streamed, never unpacked."""
    with ExitStack() as stack:
        if isinstance(source, str | os.PathLike):
            fileobj: IO[bytes] = stack.enter_context(open(source, "rb"))
        else:
            fileobj = source
        start = fileobj.tell()
        head = fileobj.read(4)
        fileobj.seek(start)
        if head.startswith(b"PK\x03\x04"):
            try:
                archive = stack.enter_context(zipfile.ZipFile(fileobj))
                stream = stack.enter_context(archive.open(_zip_member(archive)))
            except zipfile.BadZipFile as error:
                raise AppleHealthFormatError(f"Not a readable zip file: {error}.") from None
        else:
            stream = fileobj
        yield _SanitizedReader(stream, max_xml_bytes)


# --- Parsing helpers -------------------------------------------------------------------


def parse_hk_datetime(raw: str | None) -> datetime:
    """``2024-03-01 08:00:00 +0100`` (HealthKit's format) or ISO 8601, with an offset."""
    if not raw:
        raise ValueError("missing")
    try:
        return datetime.strptime(raw, "%Y-%m-%d %H:%M:%S %z")
    except ValueError:
        parsed = datetime.fromisoformat(raw)
        if parsed.tzinfo is None:
            raise ValueError("no UTC offset") from None
        return parsed


def _attr_datetime(elem: ET.Element, name: str) -> datetime:
    try:
        return parse_hk_datetime(elem.get(name))
    except ValueError:
        raise _Skip(f"missing or unreadable {name}") from None


def _number(raw: str | None) -> float:
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise _Skip("value is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise _Skip("value is not a number")
    return value


def _convert(value: float, unit: str | None, units: dict[str, Callable[[float], float]]) -> float:
    if unit in units:
        return units[unit](value)
    raise _Skip(f"unit {unit!r} not supported (expected {', '.join(units)})")


def _digest(*parts: str | None) -> str:
    joined = "\x1f".join(part or "" for part in parts)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:32]


def _source_note(elem: ET.Element) -> str:
    source = elem.get("sourceName")
    return f"Apple Health: {source}" if source else "Apple Health"


def _day_anchor(day: date, tz: tzinfo) -> datetime:
    """A daily total is recorded at local noon of its day: robust to the person's profile
    time zone differing from the export's offset by up to 12 hours."""
    return datetime.combine(day, time(12, 0), tzinfo=tz)


def _workout_activity(raw: str | None) -> str:
    name = (raw or "").removeprefix("HKWorkoutActivityType") or "Workout"
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)


# --- Per-day accumulators ---------------------------------------------------------------


@dataclass
class _StepDay:
    tz: tzinfo
    by_source: Counter = field(default_factory=Counter)


@dataclass
class _SleepNight:
    wake: datetime  # latest end of an asleep interval, in its own offset
    intervals: list[tuple[float, float]] = field(default_factory=list)  # merged, UTC timestamps
    sources: set[str] = field(default_factory=set)

    def add(self, start: float, end: float) -> None:
        """Union with the intervals so far (sources overlap; stages touch)."""
        merged: list[tuple[float, float]] = []
        for kept_start, kept_end in self.intervals:
            if kept_end < start or kept_start > end:
                merged.append((kept_start, kept_end))
            else:
                start, end = min(start, kept_start), max(end, kept_end)
        merged.append((start, end))
        self.intervals = merged

    @property
    def hours(self) -> float:
        return sum(end - start for start, end in self.intervals) / 3600


@dataclass
class _DietDay:
    tz: tzinfo
    totals: dict[str, float] = field(default_factory=dict)


class _Accumulator:
    """What the parser keeps between records: per-day totals, and the summary."""

    def __init__(self, summary: AppleHealthSummary) -> None:
        self.summary = summary
        self.steps: dict[date, _StepDay] = {}
        self.nights: dict[date, _SleepNight] = {}
        self.diet: dict[date, _DietDay] = {}

    # Individual samples -------------------------------------------------------------

    def quantity(self, elem: ET.Element, record_type: str) -> MetricSample:
        metric_type, units = QUANTITY_METRICS[record_type]
        unit = elem.get("unit")
        raw = _number(elem.get("value"))
        molar = _MOLAR_UNIT.match(unit or "")
        if molar and metric_type == "blood_glucose":
            # mmol/L to mg/dL with the molar mass HealthKit gives: mmol/L * g/mol / 10 = mg/dL.
            value = raw * float(molar["molar_mass"]) / 10
        else:
            value = _convert(raw, unit, units)
        return self._sample(
            metric_type,
            value,
            None,
            _attr_datetime(elem, "startDate"),
            f"hk:{metric_type}:"
            + _digest(
                record_type,
                elem.get("sourceName"),
                elem.get("startDate"),
                elem.get("endDate"),
                elem.get("value"),
                unit,
            ),
            _source_note(elem),
        )

    def blood_pressure(self, correlation: ET.Element) -> MetricSample:
        readings: dict[str, float] = {}
        for child in correlation.iter("Record"):
            record_type = child.get("type")
            if record_type in (BP_SYSTOLIC, BP_DIASTOLIC) and record_type not in readings:
                readings[record_type] = _convert(_number(child.get("value")), child.get("unit"), BP_UNITS)
        if BP_SYSTOLIC not in readings or BP_DIASTOLIC not in readings:
            raise _Skip("correlation lacks a systolic or diastolic record")
        systolic, diastolic = readings[BP_SYSTOLIC], readings[BP_DIASTOLIC]
        metric_type = METRIC_TYPES["blood_pressure"]
        if problem := range_problem(metric_type, diastolic, secondary=True, show_value=False):
            raise _Skip(problem)
        if diastolic >= systolic:
            raise _Skip("diastolic is not lower than systolic")
        return self._sample(
            "blood_pressure",
            systolic,
            diastolic,
            _attr_datetime(correlation, "startDate"),
            "hk:blood_pressure:"
            + _digest(
                BP_CORRELATION,
                correlation.get("sourceName"),
                correlation.get("startDate"),
                correlation.get("endDate"),
                f"{systolic:g}/{diastolic:g}",
            ),
            _source_note(correlation),
        )

    def workout(self, elem: ET.Element) -> MetricSample:
        start = _attr_datetime(elem, "startDate")
        raw_duration = elem.get("duration")
        if raw_duration is not None:
            unit = elem.get("durationUnit") or "min"
            if unit not in _WORKOUT_DURATION_UNITS:
                raise _Skip(f"duration unit {unit!r} not supported")
            minutes = _number(raw_duration) * _WORKOUT_DURATION_UNITS[unit]
        else:
            minutes = (_attr_datetime(elem, "endDate") - start).total_seconds() / 60
        activity = _workout_activity(elem.get("workoutActivityType"))
        return self._sample(
            "exercise",
            minutes,
            None,
            start,
            "hk:exercise:"
            + _digest(
                "Workout",
                elem.get("sourceName"),
                elem.get("startDate"),
                elem.get("endDate"),
                elem.get("workoutActivityType"),
            ),
            f"{activity} ({_source_note(elem)})",
        )

    def _sample(
        self,
        metric_type: str,
        value: float,
        secondary: float | None,
        recorded_at: datetime,
        external_id: str,
        notes: str,
    ) -> MetricSample:
        definition = METRIC_TYPES[metric_type]
        if problem := range_problem(definition, value, show_value=False):
            raise _Skip(problem)
        return MetricSample(
            metric_type=metric_type,
            value=value,
            secondary_value=secondary,
            unit=definition.canonical_unit,
            recorded_at=recorded_at,
            source=APPLE_HEALTH_SOURCE,
            external_id=external_id,
            notes=notes,
        )

    # Daily aggregates ------------------------------------------------------------------

    def step(self, elem: ET.Element) -> None:
        count = _number(elem.get("value"))
        if count < 0:
            raise _Skip("negative step count")
        start = _attr_datetime(elem, "startDate")
        day = self.steps.setdefault(start.date(), _StepDay(tz=start.tzinfo))
        day.by_source[elem.get("sourceName") or ""] += count

    def sleep(self, elem: ET.Element) -> None:
        value = elem.get("value")
        if value not in ASLEEP_VALUES:
            short = (value or "no value").removeprefix("HKCategoryValueSleepAnalysis")
            raise _Skip(f"not asleep ({short})")
        start, end = _attr_datetime(elem, "startDate"), _attr_datetime(elem, "endDate")
        if end <= start:
            raise _Skip("endDate is not after startDate")
        night_of = (end + NIGHT_SHIFT).date()
        night = self.nights.get(night_of)
        if night is None:
            night = self.nights[night_of] = _SleepNight(wake=end)
        elif end > night.wake:
            night.wake = end
        night.add(start.timestamp(), end.timestamp())
        night.sources.add(elem.get("sourceName") or "")

    def dietary(self, elem: ET.Element, record_type: str) -> None:
        field_name, units = DIETARY[record_type]
        amount = _convert(_number(elem.get("value")), elem.get("unit"), units)
        if amount < 0:
            raise _Skip("negative amount")
        start = _attr_datetime(elem, "startDate")
        day = self.diet.setdefault(start.date(), _DietDay(tz=start.tzinfo))
        day.totals[field_name] = day.totals.get(field_name, 0.0) + amount

    def daily_records(self) -> Iterator[MetricSample | NutritionEntry]:
        """The per-day samples and entries, once the whole file has been read."""
        for day, steps in sorted(self.steps.items()):
            # iPhone and Watch both count the same steps; summing sources would double
            # them, so the day's total is that of the source that counted most.
            source, count = max(steps.by_source.items(), key=lambda item: (item[1], item[0]))
            yield from self._daily_sample(
                "steps",
                round(count),
                _day_anchor(day, steps.tz),
                f"hk:steps:{day.isoformat()}",
                f"Apple Health daily total: {source}" if source else "Apple Health daily total",
                "steps",
            )
        for day, night in sorted(self.nights.items()):
            sources = ", ".join(sorted(s for s in night.sources if s))
            # Recorded at waking; on the night's own day even when all of it ended the
            # evening before (an evening nap), so daily summaries count it on that day.
            recorded_at = max(night.wake, datetime.combine(day, time.min, tzinfo=night.wake.tzinfo))
            yield from self._daily_sample(
                "sleep",
                round(night.hours, 2),
                recorded_at,
                f"hk:sleep:{day.isoformat()}",
                f"Apple Health asleep time: {sources}" if sources else "Apple Health asleep time",
                SLEEP_TYPE,
            )
        for day, diet in sorted(self.diet.items()):
            anchor = _day_anchor(day, diet.tz)
            if "water_ml" in diet.totals:
                self.summary.nutrition["water"] += 1
                yield NutritionEntry(
                    meal_type="water",
                    logged_at=anchor,
                    source=APPLE_HEALTH_SOURCE,
                    external_id=f"hk:water:{day.isoformat()}",
                    description="Apple Health daily water total",
                    water_ml=round(diet.totals["water_ml"], 1),
                )
            food = {name: round(diet.totals[name], 1) for name in FOOD_FIELDS if name in diet.totals}
            if food:
                self.summary.nutrition["food"] += 1
                yield NutritionEntry(
                    meal_type="snack",
                    logged_at=anchor,
                    source=APPLE_HEALTH_SOURCE,
                    external_id=f"hk:food:{day.isoformat()}",
                    description="Apple Health daily nutrition total",
                    **food,
                )

    def _daily_sample(self, metric_type, value, recorded_at, external_id, notes, record_type):
        try:
            sample = self._sample(metric_type, value, None, recorded_at, external_id, notes)
        except _Skip as skip:
            self.summary.skip(record_type, f"daily total: {skip.reason}")
            return
        self.summary.metrics[metric_type] += 1
        yield sample


# --- The parser ---------------------------------------------------------------------------

_IGNORED_TOP_LEVEL = frozenset({"Me", "ExportDate"})


def iter_apple_health(
    source: str | os.PathLike | IO[bytes],
    *,
    summary: AppleHealthSummary | None = None,
    on_progress: Callable[[AppleHealthSummary], None] | None = None,
    progress_every: int = 10_000,
    max_xml_bytes: int | None = None,
) -> Iterator[MetricSample | NutritionEntry]:
    """Yield the export's records as ``MetricSample`` and ``NutritionEntry`` objects.

    Individual samples (heart rate, weight, blood pressure, glucose, SpO2, temperature,
    workouts) come as they are read; daily totals (steps, sleep, water and food) come
    last, once the whole file has been read. ``summary`` (pass one in to read it as the
    import goes) counts what was produced and what was skipped, and why;
    ``on_progress(summary)`` is called every ``progress_every`` records. Raises
    ``AppleHealthFormatError`` for an upload that is not an export or is malformed.
    """
    summary = summary if summary is not None else AppleHealthSummary()
    state = _Accumulator(summary)
    with open_export(source, max_xml_bytes=max_xml_bytes) as stream:
        try:
            yield from _read(stream, state, on_progress, progress_every)
        except ET.ParseError as error:
            line, column = getattr(error, "position", (0, 0))
            raise AppleHealthFormatError(
                f"export.xml is not well-formed XML at line {line}, column {column}."
            ) from None
        except (zipfile.BadZipFile, zlib.error, EOFError) as error:
            raise AppleHealthFormatError(f"The zip is damaged: {error}.") from None
    yield from state.daily_records()


def _read(stream, state: _Accumulator, on_progress, progress_every: int) -> Iterator[MetricSample]:
    summary = state.summary
    depth = 0
    root = None
    for event, elem in ET.iterparse(stream, events=("start", "end")):  # noqa: S314 - safe on expat >= 2.4, see the import
        if event == "start":
            depth += 1
            if depth == 1:
                if elem.tag != "HealthData":
                    raise AppleHealthFormatError(
                        f"Not an Apple Health export: the root element is <{elem.tag}>, not <HealthData>."
                    )
                root = elem
            continue
        depth -= 1
        if depth != 1:
            continue  # nested elements are handled with their top-level parent
        tag = elem.tag
        if tag == "ExportDate":
            try:
                summary.export_date = parse_hk_datetime(elem.get("value"))
            except ValueError:
                summary.export_date = None
        elif tag not in _IGNORED_TOP_LEVEL:
            summary.records_read += 1
            record_type = "Workout" if tag == "Workout" else (elem.get("type") or tag)
            try:
                sample = _handle(elem, tag, record_type, state)
            except _Skip as skip:
                summary.skip(record_type, skip.reason)
            else:
                if sample is not None:
                    summary.metrics[sample.metric_type] += 1
                    yield sample
            if on_progress is not None and summary.records_read % progress_every == 0:
                on_progress(summary)
        # Drop what has been handled: without this the tree keeps every record.
        root.clear()


def _handle(elem: ET.Element, tag: str, record_type: str, state: _Accumulator) -> MetricSample | None:
    if tag == "Record":
        if record_type in QUANTITY_METRICS:
            return state.quantity(elem, record_type)
        if record_type == STEP_TYPE:
            state.step(elem)
        elif record_type == SLEEP_TYPE:
            state.sleep(elem)
        elif record_type in DIETARY:
            state.dietary(elem, record_type)
        elif record_type in (BP_SYSTOLIC, BP_DIASTOLIC):
            raise _Skip("read from its blood pressure correlation")
        else:
            raise _Skip("type not imported")
        return None
    if tag == "Correlation":
        if record_type == BP_CORRELATION:
            return state.blood_pressure(elem)
        raise _Skip("its records are read from the top level")
    if tag == "Workout":
        return state.workout(elem)
    raise _Skip("not imported")


def parse_apple_health(
    source: str | os.PathLike | IO[bytes], **options: Any
) -> tuple[list[MetricSample], list[NutritionEntry], AppleHealthSummary]:
    """Everything at once, for small exports and tests; imports use ``iter_apple_health``."""
    summary = AppleHealthSummary()
    samples: list[MetricSample] = []
    entries: list[NutritionEntry] = []
    for record in iter_apple_health(source, summary=summary, **options):
        (samples if isinstance(record, MetricSample) else entries).append(record)
    return samples, entries, summary
