"""FHIR R4 mapping of health metrics: Observation and Patient resources out, a Bundle of
Observations in.

Pure Python and no ORM: the export side turns rows (dicts) into resource dicts and
JSON bytes; the import side turns a parsed Bundle (a dict) into normalized
``MetricSample`` records plus per-entry errors. docs/interop.md has the mapping table.

Identity: every resource gets a stable identifier (``system`` under
``settings.FHIR_SYSTEM_BASE``, ``value`` = the HealthTrack id) and a ``urn:uuid`` fullUrl
derived from it (UUID v5), so a second export of the same data carries the same ids and a
receiving system can recognise what it already has.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, tzinfo
from typing import Any

from django.conf import settings

from interop.records import EntryError, MetricSample, range_problem
from interop.streaming import FLUSH_BYTES, json_document_stream
from metrics.registry import METRIC_TYPES, MetricType, normalize_unit

FHIR_JSON = "application/fhir+json"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DATA_ABSENT_REASON = "http://terminology.hl7.org/CodeSystem/data-absent-reason"

CATEGORY_DISPLAY = {
    "vital-signs": "Vital Signs",
    "laboratory": "Laboratory",
    "activity": "Activity",
}

SYSTOLIC = ("8480-6", "Systolic blood pressure")
DIASTOLIC = ("8462-4", "Diastolic blood pressure")

# Imported FHIR data is stored with this metrics.models.Source value.
FHIR_SOURCE = "fhir"

# UCUM codes accepted on import, per metric type: code → (registry unit, factor applied
# before the registry converts that unit to the canonical one).
_PER_MINUTE = {u: ("bpm", 1.0) for u in ("/min", "{beats}/min", "{beat}/min", "beats/min", "bpm")}
_COUNT = {u: ("count", 1.0) for u in ("/d", "{steps}/d", "{step}/d", "{steps}", "{step}", "{count}", "1")}


@dataclass(frozen=True)
class FhirMapping:
    metric_type: str
    code: str  # LOINC code written on export
    display: str
    category: str  # observation-category code
    ucum: str  # UCUM code of the canonical unit
    unit_display: str  # human-readable unit
    extra_codings: tuple[tuple[str, str], ...] = ()  # further LOINC codings written on export
    import_aliases: tuple[str, ...] = ()  # further LOINC codes accepted on import
    import_units: Mapping[str, tuple[str, float]] = field(default_factory=dict)


FHIR_MAPPINGS: dict[str, FhirMapping] = {
    m.metric_type: m
    for m in (
        FhirMapping("heart_rate", "8867-4", "Heart rate", "vital-signs", "/min", "beats/minute",
                    import_units=_PER_MINUTE),
        FhirMapping("resting_heart_rate", "40443-4", "Heart rate --resting", "vital-signs", "/min",
                    "beats/minute", import_units=_PER_MINUTE),
        FhirMapping("steps", "41950-7", "Number of steps in 24 hour Measured", "activity", "/d",
                    "steps/day", import_aliases=("55423-8",), import_units=_COUNT),
        FhirMapping("sleep", "93832-4", "Sleep duration", "activity", "h", "h",
                    import_units={"h": ("h", 1.0), "min": ("min", 1.0), "s": ("h", 1 / 3600)}),
        FhirMapping("weight", "29463-7", "Body weight", "vital-signs", "kg", "kg",
                    import_aliases=("3141-9",),
                    import_units={"kg": ("kg", 1.0), "g": ("kg", 0.001), "[lb_av]": ("lb", 1.0)}),
        FhirMapping("blood_pressure", "85354-9", "Blood pressure panel with all children optional",
                    "vital-signs", "mm[Hg]", "mmHg", import_aliases=("55284-4",),
                    import_units={"mm[Hg]": ("mmHg", 1.0), "kPa": ("kPa", 1.0)}),
        FhirMapping("blood_glucose", "2339-0", "Glucose [Mass/volume] in Blood", "laboratory", "mg/dL",
                    "mg/dL", import_aliases=("2345-7", "41653-7", "15074-8", "14749-6"),
                    import_units={"mg/dL": ("mg/dL", 1.0), "mmol/L": ("mmol/L", 1.0)}),
        FhirMapping("oxygen_saturation", "59408-5",
                    "Oxygen saturation in Arterial blood by Pulse oximetry", "vital-signs", "%", "%",
                    extra_codings=(("2708-6", "Oxygen saturation in Arterial blood"),),
                    import_aliases=("2708-6",), import_units={"%": ("%", 1.0), "1": ("fraction", 1.0)}),
        FhirMapping("body_temperature", "8310-5", "Body temperature", "vital-signs", "Cel", "°C",
                    import_units={"Cel": ("°C", 1.0), "[degF]": ("°F", 1.0)}),
        FhirMapping("exercise", "55411-3", "Exercise duration", "activity", "min", "min",
                    import_units={"min": ("min", 1.0), "h": ("h", 1.0), "s": ("min", 1 / 60)}),
    )
}  # fmt: skip

# LOINC code (export code and aliases) → metric type, for import.
_BY_CODE: dict[str, FhirMapping] = {}
for _mapping in FHIR_MAPPINGS.values():
    for _code in (_mapping.code, *_mapping.import_aliases):
        _BY_CODE[_code] = _mapping


# --- Identity ---------------------------------------------------------------------------


def system_uri(*names: str) -> str:
    """An identifier system of this deployment: ``FHIR_SYSTEM_BASE`` followed by
    ``names`` (joined with ``:`` under a URN base, ``/`` under a URL base)."""
    base = getattr(settings, "FHIR_SYSTEM_BASE", "urn:healthtrack")
    separator = ":" if base.startswith("urn:") else "/"
    return separator.join((base.rstrip(separator), *names))


def stable_uuid(system: str, value: object) -> str:
    """The same UUID for the same identifier, in every export (UUID v5)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{system}|{value}"))


def patient_identity(user_id: int) -> tuple[str, str]:
    """(identifier system, resource id / uuid) of a person's Patient resource."""
    system = system_uri("user")
    return system, stable_uuid(system, user_id)


def observation_identity(metric_id: int) -> tuple[str, str]:
    system = system_uri("health-metric")
    return system, stable_uuid(system, metric_id)


# --- Export -----------------------------------------------------------------------------

_GENDERS = {
    "female": "female",
    "male": "male",
    "non_binary": "other",
    "other": "other",
    "prefer_not_to_say": "unknown",
}


def patient_resource(
    *,
    user_id: int,
    first_name: str = "",
    last_name: str = "",
    gender: str = "",
    birth_date: date | None = None,
    active: bool = True,
) -> dict[str, Any]:
    """A Patient with only what FHIR needs: identifier, name, gender, birthDate."""
    system, resource_id = patient_identity(user_id)
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": resource_id,
        "identifier": [{"system": system, "value": str(user_id)}],
        "active": bool(active),
    }
    name: dict[str, Any] = {}
    if last_name:
        name["family"] = last_name
    if first_name:
        name["given"] = [first_name]
    if name:
        patient["name"] = [{"use": "official", **name}]
    if gender in _GENDERS:
        patient["gender"] = _GENDERS[gender]
    if birth_date is not None:
        patient["birthDate"] = birth_date.isoformat()
    return patient


def _number(value: float) -> int | float:
    """Whole numbers as integers (72, not 72.0); FHIR decimals otherwise."""
    return int(value) if float(value).is_integer() else value


def _quantity(value: float, mapping: FhirMapping) -> dict[str, Any]:
    return {"value": _number(value), "unit": mapping.unit_display, "system": UCUM, "code": mapping.ucum}


def _loinc(code: str, display: str) -> dict[str, str]:
    return {"system": LOINC, "code": code, "display": display}


def _fhir_datetime(value: datetime, tz: tzinfo) -> str:
    """ISO 8601 with the person's UTC offset: clinicians see the local clock time."""
    return value.astimezone(tz).isoformat()


def _source_identifier(source: str, external_id: str) -> dict[str, str]:
    """The identifier a sample carried where it came from. FHIR-imported samples keep
    their original ``system|value``, so the originating system recognises its own."""
    if source == FHIR_SOURCE and "|" in external_id:
        system, _, value = external_id.rpartition("|")
        if system and value:
            return {"system": system, "value": value}
    return {"system": system_uri("source", source), "value": external_id}


def observation_resource(
    row: Mapping[str, Any], *, patient_reference: str, tz: tzinfo, source_labels: Mapping[str, str]
) -> dict[str, Any]:
    """One Observation for one metric row (keys as in ``HealthMetric``)."""
    mapping = FHIR_MAPPINGS[row["metric_type"]]
    system, resource_id = observation_identity(row["id"])
    identifiers = [{"system": system, "value": str(row["id"])}]
    if row.get("external_id"):
        identifiers.append(_source_identifier(row["source"], row["external_id"]))
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "id": resource_id,
        "identifier": identifiers,
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": OBSERVATION_CATEGORY,
                        "code": mapping.category,
                        "display": CATEGORY_DISPLAY[mapping.category],
                    }
                ]
            }
        ],
        "code": {
            "coding": [
                _loinc(mapping.code, mapping.display),
                *(_loinc(code, display) for code, display in mapping.extra_codings),
            ],
            "text": METRIC_TYPES[mapping.metric_type].label,
        },
        "subject": {"reference": patient_reference},
        "effectiveDateTime": _fhir_datetime(row["recorded_at"], tz),
    }
    if row.get("created_at") is not None:
        observation["issued"] = _fhir_datetime(row["created_at"], tz)
    if mapping.metric_type == "blood_pressure":
        observation["component"] = [
            {"code": {"coding": [_loinc(*SYSTOLIC)]}, "valueQuantity": _quantity(row["value"], mapping)},
            _diastolic_component(row.get("secondary_value"), mapping),
        ]
    else:
        observation["valueQuantity"] = _quantity(row["value"], mapping)
    observation["device"] = {"display": source_labels.get(row["source"], row["source"])}
    if row.get("notes"):
        observation["note"] = [{"text": row["notes"]}]
    return observation


def _diastolic_component(value: float | None, mapping: FhirMapping) -> dict[str, Any]:
    component: dict[str, Any] = {"code": {"coding": [_loinc(*DIASTOLIC)]}}
    if value is None:
        component["dataAbsentReason"] = {"coding": [{"system": DATA_ABSENT_REASON, "code": "unknown"}]}
    else:
        component["valueQuantity"] = _quantity(value, mapping)
    return component


def bundle_stream(
    *,
    bundle_id: str,
    timestamp: datetime,
    patient: dict[str, Any],
    observations: Iterable[dict[str, Any]],
    flush_bytes: int = FLUSH_BYTES,
) -> Iterator[bytes]:
    """A ``collection`` Bundle (the Patient, then the Observations) as JSON, written
    incrementally: ``observations`` is consumed lazily, one resource at a time."""

    def entries() -> Iterator[dict[str, Any]]:
        yield {"fullUrl": f"urn:uuid:{patient['id']}", "resource": patient}
        for observation in observations:
            yield {"fullUrl": f"urn:uuid:{observation['id']}", "resource": observation}

    head = {
        "resourceType": "Bundle",
        "id": bundle_id,
        "type": "collection",
        "timestamp": timestamp.isoformat(),
    }
    return json_document_stream(head, [("entry", entries())], flush_bytes=flush_bytes)


# --- Import -----------------------------------------------------------------------------


class FhirBundleError(ValueError):
    """The document as a whole is not a Bundle this importer can read."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass
class FhirParseResult:
    """Samples (each with the index of the Bundle entry it came from), per-entry errors,
    and entries deliberately passed over (resources other than Observation)."""

    entries: list[tuple[int, MetricSample]] = field(default_factory=list)
    errors: list[EntryError] = field(default_factory=list)
    ignored: list[EntryError] = field(default_factory=list)

    @property
    def samples(self) -> list[MetricSample]:
        return [sample for _, sample in self.entries]


class _EntryProblem(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


_IMPORTED_STATUSES = ("final", "amended", "corrected")
_FHIR_DATETIME = re.compile(r"^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$")
MAX_EXTERNAL_ID_LENGTH = 128


def parse_observation_bundle(
    bundle: Any, *, default_timezone: tzinfo | None = None, max_entries: int | None = None
) -> FhirParseResult:
    """Map a FHIR Bundle of Observations to normalized metric samples.

    Every entry ends up in exactly one of ``entries`` (mapped), ``errors`` (an Observation
    that cannot be mapped: unknown code, missing value, unit or date, value out of range)
    or ``ignored`` (not an Observation, e.g. the Patient of a HealthTrack export).
    ``default_timezone`` places date-only and offset-less times (the person's zone);
    without it they are errors. Raises ``FhirBundleError`` when the document itself is not
    a Bundle with a list of entries.
    """
    if not isinstance(bundle, Mapping) or bundle.get("resourceType") != "Bundle":
        raise FhirBundleError("resourceType", "Expected a FHIR Bundle resource.")
    raw_entries = bundle.get("entry", [])
    if not isinstance(raw_entries, list):
        raise FhirBundleError("entry", "Bundle.entry must be a list.")
    if max_entries is not None and len(raw_entries) > max_entries:
        raise FhirBundleError("entry", f"At most {max_entries} entries per Bundle; got {len(raw_entries)}.")
    result = FhirParseResult()
    for index, entry in enumerate(raw_entries):
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if not isinstance(resource, Mapping):
            result.errors.append(EntryError(index, "resource", "Entry has no resource."))
            continue
        resource_type = resource.get("resourceType")
        if resource_type != "Observation":
            result.ignored.append(
                EntryError(index, "resource.resourceType", f"{resource_type} resources are not imported.")
            )
            continue
        try:
            sample = _observation_sample(resource, entry, default_timezone)
        except _EntryProblem as problem:
            result.errors.append(EntryError(index, f"resource.{problem.field}", problem.message))
        else:
            result.entries.append((index, sample))
    return result


def _observation_sample(resource: Mapping, entry: Mapping, tz: tzinfo | None) -> MetricSample:
    status = resource.get("status")
    if status not in _IMPORTED_STATUSES:
        raise _EntryProblem(
            "status",
            f"Status {status!r} is not imported; only {', '.join(_IMPORTED_STATUSES)} observations are.",
        )
    mapping = _mapping_of(resource.get("code"))
    metric_type = METRIC_TYPES[mapping.metric_type]
    secondary = None
    if mapping.metric_type == "blood_pressure":
        value, secondary = _blood_pressure(resource, mapping, metric_type)
    else:
        value = _quantity_value(
            resource.get("valueQuantity"), "valueQuantity", mapping, metric_type, resource
        )
        if problem := range_problem(metric_type, value):
            raise _EntryProblem("valueQuantity.value", problem)
    return MetricSample(
        metric_type=mapping.metric_type,
        value=value,
        secondary_value=secondary,
        unit=metric_type.canonical_unit,
        recorded_at=_effective(resource, tz),
        source=FHIR_SOURCE,
        external_id=_external_id(resource, entry),
        notes=_notes(resource),
    )


def _codings(concept: Any) -> list[Mapping]:
    if not isinstance(concept, Mapping) or not isinstance(concept.get("coding"), list):
        return []
    return [coding for coding in concept["coding"] if isinstance(coding, Mapping)]


def _loinc_codes(concept: Any) -> list[str]:
    return [
        str(coding.get("code"))
        for coding in _codings(concept)
        if coding.get("system") == LOINC and coding.get("code") is not None
    ]


def _mapping_of(code: Any) -> FhirMapping:
    codes = _loinc_codes(code)
    for loinc_code in codes:
        if loinc_code in _BY_CODE:
            return _BY_CODE[loinc_code]
    if SYSTOLIC[0] in codes or DIASTOLIC[0] in codes:
        raise _EntryProblem(
            "code",
            "Systolic or diastolic pressure alone cannot be imported; send a blood pressure panel "
            "(LOINC 85354-9) with both as components.",
        )
    known = ", ".join(f"{m.code} ({m.metric_type})" for m in FHIR_MAPPINGS.values())
    found = ", ".join(codes) if codes else "no LOINC coding"
    raise _EntryProblem("code", f"No LOINC code HealthTrack imports ({found}); known codes: {known}.")


def _quantity_value(
    quantity: Any, path: str, mapping: FhirMapping, metric_type: MetricType, holder: Mapping
) -> float:
    """The value of a Quantity converted to the canonical unit of ``metric_type``."""
    if not isinstance(quantity, Mapping):
        reason = _absent_reason(holder)
        raise _EntryProblem(path, f"No value{reason}; expected a {path} with a value and a UCUM unit.")
    value = quantity.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _EntryProblem(f"{path}.value", "A number is required.")
    unit = quantity.get("code") if quantity.get("code") is not None else quantity.get("unit")
    if unit is None:
        if mapping.metric_type != "steps":
            raise _EntryProblem(f"{path}.code", f"A UCUM unit is required (e.g. {mapping.ucum}).")
        unit = "{steps}"
    return _to_canonical(float(value), str(unit), mapping, metric_type, f"{path}.code")


def _to_canonical(value: float, unit: str, mapping: FhirMapping, metric_type: MetricType, path: str) -> float:
    if unit in mapping.import_units:
        registry_unit, factor = mapping.import_units[unit]
        return metric_type.to_canonical(value * factor, registry_unit)
    try:
        return metric_type.to_canonical(value, normalize_unit(unit, metric_type))
    except KeyError:
        accepted = ", ".join(mapping.import_units)
        raise _EntryProblem(
            path, f"Unit {unit!r} is not accepted for {metric_type.label.lower()}; use one of: {accepted}."
        ) from None


def _absent_reason(holder: Mapping) -> str:
    codes = [str(c.get("code")) for c in _codings(holder.get("dataAbsentReason"))]
    return f" (dataAbsentReason: {', '.join(codes)})" if codes else ""


def _blood_pressure(resource: Mapping, mapping: FhirMapping, metric_type: MetricType) -> tuple[float, float]:
    components = resource.get("component")
    if not isinstance(components, list):
        raise _EntryProblem(
            "component", "A blood pressure panel needs systolic (8480-6) and diastolic (8462-4) components."
        )
    values: dict[str, float] = {}
    for position, component in enumerate(components):
        if not isinstance(component, Mapping):
            continue
        codes = _loinc_codes(component.get("code"))
        for code in (SYSTOLIC[0], DIASTOLIC[0]):
            if code in codes and code not in values:
                values[code] = _quantity_value(
                    component.get("valueQuantity"),
                    f"component[{position}].valueQuantity",
                    mapping,
                    metric_type,
                    component,
                )
    for code, name in (SYSTOLIC, DIASTOLIC):
        if code not in values:
            raise _EntryProblem("component", f"No {name.lower()} component (LOINC {code}) with a value.")
    systolic, diastolic = values[SYSTOLIC[0]], values[DIASTOLIC[0]]
    if problem := range_problem(metric_type, systolic):
        raise _EntryProblem("component", problem)
    if problem := range_problem(metric_type, diastolic, secondary=True):
        raise _EntryProblem("component", problem)
    if diastolic >= systolic:
        raise _EntryProblem("component", "Diastolic pressure must be lower than systolic pressure.")
    return systolic, diastolic


def _effective(resource: Mapping, tz: tzinfo | None) -> datetime:
    for name in ("effectiveDateTime", "effectiveInstant"):
        if name in resource:
            return parse_fhir_datetime(resource[name], name, tz)
    period = resource.get("effectivePeriod")
    if isinstance(period, Mapping):
        for end in ("end", "start"):
            if period.get(end):
                return parse_fhir_datetime(period[end], f"effectivePeriod.{end}", tz)
    raise _EntryProblem("effectiveDateTime", "When it was measured is required (effectiveDateTime).")


def parse_fhir_datetime(raw: Any, path: str, tz: tzinfo | None) -> datetime:
    """A FHIR dateTime as an aware datetime. A date alone means noon of that day and a
    time without offset is local, both in ``tz``; without ``tz`` they are refused."""
    if not isinstance(raw, str) or not _FHIR_DATETIME.match(raw):
        raise _EntryProblem(path, "Expected a FHIR dateTime such as 2024-05-01T08:30:00+02:00.")
    if len(raw) < len("YYYY-MM-DD"):
        raise _EntryProblem(path, "A full date is required, not only a year or a month.")
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise _EntryProblem(path, "Not a valid date or time.") from None
    if parsed.tzinfo is None:
        if tz is None:
            raise _EntryProblem(path, "A time with a UTC offset is required (e.g. 2024-05-01T08:30:00Z).")
        if "T" not in raw:
            parsed = datetime.combine(parsed.date(), time(12, 0))
        parsed = parsed.replace(tzinfo=tz)
    return parsed


def _external_id(resource: Mapping, entry: Mapping) -> str | None:
    """``system|value`` of the first identifier, else the resource id, else fullUrl."""
    candidate = None
    identifiers = resource.get("identifier")
    if isinstance(identifiers, list):
        for identifier in identifiers:
            if isinstance(identifier, Mapping) and identifier.get("value"):
                system = identifier.get("system")
                candidate = f"{system}|{identifier['value']}" if system else str(identifier["value"])
                break
    if candidate is None and resource.get("id"):
        candidate = f"Observation/{resource['id']}"
    if candidate is None and isinstance(entry.get("fullUrl"), str) and entry["fullUrl"]:
        candidate = entry["fullUrl"]
    if candidate is not None and len(candidate) > MAX_EXTERNAL_ID_LENGTH:
        candidate = "sha256:" + hashlib.sha256(candidate.encode()).hexdigest()
    return candidate


def _notes(resource: Mapping) -> str:
    parts = [
        str(note["text"])
        for note in resource.get("note") or []
        if isinstance(note, Mapping) and note.get("text")
    ]
    device = resource.get("device")
    if isinstance(device, Mapping) and device.get("display"):
        parts.append(f"Device: {device['display']}")
    return "\n".join(parts)
