"""interop.fhir.parse_observation_bundle: a FHIR Bundle → normalized samples + per-entry errors."""

from __future__ import annotations

import datetime
import json
import zoneinfo

import pytest
from fhir.resources.R4B.bundle import Bundle

from interop import fhir
from interop.fhir import FhirBundleError, parse_observation_bundle
from interop.records import MetricSample
from interop.tests.factories import SAMPLE_VALUES

UTC = datetime.UTC
WHEN = "2024-03-01T08:30:00+01:00"


def observation(code, value=None, unit=None, *, components=None, **extra) -> dict:
    resource = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "effectiveDateTime": WHEN,
    }
    if value is not None:
        resource["valueQuantity"] = {"value": value, "system": "http://unitsofmeasure.org", "code": unit}
    if components is not None:
        resource["component"] = components
    resource.update(extra)
    return resource


def bp_component(code, value, unit="mm[Hg]") -> dict:
    return {
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "valueQuantity": {"value": value, "system": "http://unitsofmeasure.org", "code": unit},
    }


def bundle(*resources) -> dict:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


def parse_one(resource, **options) -> MetricSample:
    result = parse_observation_bundle(bundle(resource), **options)
    assert result.errors == [], result.errors
    (sample,) = result.samples
    return sample


def error_of(resource, **options):
    result = parse_observation_bundle(bundle(resource), **options)
    assert result.samples == []
    (error,) = result.errors
    return error


# --- round trip ---------------------------------------------------------------------


def test_healthtrack_export_round_trips_every_type():
    tz = zoneinfo.ZoneInfo("Europe/Paris")
    recorded = datetime.datetime(2024, 3, 1, 7, 30, tzinfo=UTC)
    rows = [
        {
            "id": n,
            "metric_type": metric_type,
            "value": value,
            "secondary_value": secondary,
            "recorded_at": recorded,
            "created_at": recorded,
            "source": "withings",
            "external_id": None,
            "notes": "",
        }
        for n, (metric_type, (value, secondary, _)) in enumerate(SAMPLE_VALUES.items(), start=1)
    ]
    patient = fhir.patient_resource(user_id=7)
    document = json.loads(
        b"".join(
            fhir.bundle_stream(
                bundle_id="b1",
                timestamp=recorded,
                patient=patient,
                observations=(
                    fhir.observation_resource(
                        row, patient_reference=f"urn:uuid:{patient['id']}", tz=tz, source_labels={}
                    )
                    for row in rows
                ),
            )
        )
    )
    Bundle.model_validate(document)
    result = parse_observation_bundle(document)
    assert result.errors == []
    assert [e.index for e in result.ignored] == [0]  # the Patient
    assert len(result.samples) == len(rows)
    for row, (index, sample) in zip(rows, result.entries, strict=True):
        assert index == row["id"]
        value, secondary, unit = SAMPLE_VALUES[row["metric_type"]]
        assert (sample.metric_type, sample.value, sample.secondary_value, sample.unit) == (
            row["metric_type"],
            value,
            secondary,
            unit,
        )
        assert sample.recorded_at == recorded
        assert sample.source == "fhir"
        assert sample.external_id == f"urn:healthtrack:health-metric|{row['id']}"
        assert sample.notes == "Device: withings"


def test_ingest_form_maps_one_to_one_onto_a_bulk_ingest_sample():
    sample = parse_one(observation("8867-4", 64, "/min", identifier=[{"system": "urn:x", "value": "1"}]))
    assert sample.as_ingest() == {
        "metric_type": "heart_rate",
        "value": 64.0,
        "secondary_value": None,
        "unit": "bpm",
        "recorded_at": "2024-03-01T08:30:00+01:00",
        "source": "fhir",
        "external_id": "urn:x|1",
        "notes": "",
    }


# --- units ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "value", "unit", "metric_type", "expected"),
    [
        ("8867-4", 70, "/min", "heart_rate", 70),
        ("8867-4", 70, "{beats}/min", "heart_rate", 70),
        ("40443-4", 55, "/min", "resting_heart_rate", 55),
        ("41950-7", 9000, "/d", "steps", 9000),
        ("55423-8", 1200, "{steps}", "steps", 1200),
        ("93832-4", 7.5, "h", "sleep", 7.5),
        ("93832-4", 450, "min", "sleep", 7.5),
        ("93832-4", 27000, "s", "sleep", 7.5),
        ("29463-7", 70, "kg", "weight", 70),
        ("29463-7", 70000, "g", "weight", 70),
        ("29463-7", 154.3, "[lb_av]", "weight", 154.3 * 0.45359237),
        ("29463-7", 154.3, "lbs", "weight", 154.3 * 0.45359237),  # registry unit as a fallback
        ("2339-0", 95, "mg/dL", "blood_glucose", 95),
        ("15074-8", 5.5, "mmol/L", "blood_glucose", 5.5 * 18.016),
        ("59408-5", 97, "%", "oxygen_saturation", 97),
        ("2708-6", 0.97, "1", "oxygen_saturation", 97),
        ("8310-5", 37, "Cel", "body_temperature", 37),
        ("8310-5", 98.6, "[degF]", "body_temperature", 37),
        ("55411-3", 45, "min", "exercise", 45),
        ("55411-3", 1.5, "h", "exercise", 90),
        ("55411-3", 1800, "s", "exercise", 30),
    ],
)
def test_units_are_converted_to_canonical(code, value, unit, metric_type, expected):
    sample = parse_one(observation(code, value, unit))
    assert sample.metric_type == metric_type
    assert sample.value == pytest.approx(expected)


def test_blood_pressure_panel_in_mmhg_and_kpa():
    sample = parse_one(
        observation("85354-9", components=[bp_component("8480-6", 120), bp_component("8462-4", 80)])
    )
    assert (sample.metric_type, sample.value, sample.secondary_value, sample.unit) == (
        "blood_pressure",
        120,
        80,
        "mmHg",
    )
    sample = parse_one(
        observation(
            "55284-4", components=[bp_component("8462-4", 10.7, "kPa"), bp_component("8480-6", 16, "kPa")]
        )
    )
    assert sample.value == pytest.approx(120.0, abs=0.1) and sample.secondary_value == pytest.approx(
        80.3, abs=0.1
    )


def test_steps_without_unit_are_counts():
    resource = observation("41950-7")
    resource["valueQuantity"] = {"value": 4000}
    assert parse_one(resource).value == 4000


# --- dates ----------------------------------------------------------------------------


def test_effective_sources_in_order():
    assert parse_one(observation("8867-4", 60, "/min")).recorded_at.isoformat() == WHEN
    resource = observation("8867-4", 60, "/min")
    del resource["effectiveDateTime"]
    resource["effectivePeriod"] = {"start": "2024-03-01T07:00:00Z", "end": "2024-03-01T07:10:00Z"}
    assert parse_one(resource).recorded_at == datetime.datetime(2024, 3, 1, 7, 10, tzinfo=UTC)
    del resource["effectivePeriod"]
    resource["effectiveInstant"] = "2024-03-01T07:05:00.123Z"
    assert parse_one(resource).recorded_at.second == 0


def test_dates_without_time_use_the_default_zone():
    tz = zoneinfo.ZoneInfo("America/New_York")
    resource = observation("41950-7", 9000, "/d", effectiveDateTime="2024-03-01")
    assert parse_one(resource, default_timezone=tz).recorded_at == datetime.datetime(
        2024, 3, 1, 12, tzinfo=tz
    )
    resource["effectiveDateTime"] = "2024-03-01T08:00:00"
    assert parse_one(resource, default_timezone=tz).recorded_at == datetime.datetime(2024, 3, 1, 8, tzinfo=tz)
    assert error_of(resource).field == "resource.effectiveDateTime"


# --- per-entry errors ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "field", "fragment"),
    [
        (observation("1234-5", 1, "/min"), "resource.code", "No LOINC code HealthTrack imports (1234-5)"),
        (
            {**observation("8867-4", 60, "/min"), "code": {"text": "pulse"}},
            "resource.code",
            "no LOINC coding",
        ),
        (observation("8480-6", 120, "mm[Hg]"), "resource.code", "blood pressure panel"),
        (observation("8867-4"), "resource.valueQuantity", "No value"),
        (
            observation("8867-4", dataAbsentReason={"coding": [{"code": "asked-unknown"}]}),
            "resource.valueQuantity",
            "dataAbsentReason: asked-unknown",
        ),
        (observation("8867-4", "60", "/min"), "resource.valueQuantity.value", "A number is required"),
        (observation("8867-4", True, "/min"), "resource.valueQuantity.value", "A number is required"),
        (observation("29463-7", 70, None), "resource.valueQuantity.code", "A UCUM unit is required"),
        (observation("29463-7", 70, "stone"), "resource.valueQuantity.code", "Unit 'stone' is not accepted"),
        (
            observation("8867-4", 400, "/min"),
            "resource.valueQuantity.value",
            "400 bpm is outside the valid range",
        ),
        (observation("8867-4", 60, "/min", status="entered-in-error"), "resource.status", "not imported"),
        (observation("8867-4", 60, "/min", status=None), "resource.status", "None"),
        (
            observation("8867-4", 60, "/min", effectiveDateTime="2024"),
            "resource.effectiveDateTime",
            "full date",
        ),
        (
            observation("8867-4", 60, "/min", effectiveDateTime="March 1"),
            "resource.effectiveDateTime",
            "FHIR dateTime",
        ),
        (
            observation("8867-4", 60, "/min", effectiveDateTime="2024-02-30T10:00:00Z"),
            "resource.effectiveDateTime",
            "Not a valid",
        ),
        (
            {k: v for k, v in observation("8867-4", 60, "/min").items() if k != "effectiveDateTime"},
            "resource.effectiveDateTime",
            "required",
        ),
        (
            observation("85354-9", components=[bp_component("8480-6", 120)]),
            "resource.component",
            "diastolic blood pressure component",
        ),
        (observation("85354-9"), "resource.component", "needs systolic"),
        (
            observation("85354-9", components=[bp_component("8480-6", 120), bp_component("8462-4", 200)]),
            "resource.component",
            "outside the valid range for diastolic",
        ),
        (
            observation("85354-9", components=[bp_component("8480-6", 80), bp_component("8462-4", 90)]),
            "resource.component",
            "lower than systolic",
        ),
        (
            observation("85354-9", components=[bp_component("8480-6", 120), bp_component("8462-4", None)]),
            "resource.component[1].valueQuantity.value",
            "A number is required",
        ),
    ],
)
def test_unmappable_entries_are_reported_with_field_and_reason(resource, field, fragment):
    error = error_of(resource)
    assert error.index == 0
    assert error.field == field
    assert fragment in error.message


def test_good_and_bad_entries_are_reported_by_index():
    document = bundle(
        observation("8867-4", 60, "/min"),
        {"resourceType": "Patient", "id": "p"},
        observation("0000-0", 1, "/min"),
        observation("29463-7", 70, "kg"),
    )
    document["entry"].append({"fullUrl": "urn:uuid:x"})
    document["entry"].append("not an object")
    result = parse_observation_bundle(document)
    assert [index for index, _ in result.entries] == [0, 3]
    assert [(e.index, e.field) for e in result.errors] == [
        (2, "resource.code"),
        (4, "resource"),
        (5, "resource"),
    ]
    assert [e.as_dict() for e in result.ignored] == [
        {"index": 1, "field": "resource.resourceType", "message": "Patient resources are not imported."}
    ]


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ([], "resourceType"),
        ({"resourceType": "Observation"}, "resourceType"),
        ({"resourceType": "Bundle", "entry": {}}, "entry"),
    ],
)
def test_a_document_that_is_not_a_bundle_is_refused_whole(document, field):
    with pytest.raises(FhirBundleError) as caught:
        parse_observation_bundle(document)
    assert caught.value.field == field


def test_entry_count_can_be_capped():
    with pytest.raises(FhirBundleError, match="At most 1 entries"):
        parse_observation_bundle(
            bundle(observation("8867-4", 60, "/min"), observation("8867-4", 61, "/min")), max_entries=1
        )


def test_bundle_without_entries_is_empty():
    result = parse_observation_bundle({"resourceType": "Bundle", "type": "collection"})
    assert (result.entries, result.errors, result.ignored) == ([], [], [])


# --- external ids -----------------------------------------------------------------------


def test_external_id_prefers_identifier_then_id_then_full_url():
    with_identifier = observation("8867-4", 60, "/min", id="abc", identifier=[{"value": "v-1"}])
    assert parse_one(with_identifier).external_id == "v-1"
    assert parse_one(observation("8867-4", 60, "/min", id="abc")).external_id == "Observation/abc"
    document = {
        "resourceType": "Bundle",
        "entry": [{"fullUrl": "urn:uuid:1234", "resource": observation("8867-4", 60, "/min")}],
    }
    assert parse_observation_bundle(document).samples[0].external_id == "urn:uuid:1234"
    document["entry"][0].pop("fullUrl")
    assert parse_observation_bundle(document).samples[0].external_id is None


def test_long_identifiers_are_hashed_to_fit():
    system = "https://ehr.example.org/" + "x" * 200
    resource = observation("8867-4", 60, "/min", identifier=[{"system": system, "value": "1"}])
    external_id = parse_one(resource).external_id
    assert external_id.startswith("sha256:") and len(external_id) <= fhir.MAX_EXTERNAL_ID_LENGTH
    assert parse_one(resource).external_id == external_id  # stable


def test_notes_and_device_are_kept():
    resource = observation(
        "8867-4", 60, "/min", note=[{"text": "after stairs"}], device={"display": "Polar H10"}
    )
    assert parse_one(resource).notes == "after stairs\nDevice: Polar H10"


def test_normalized_records_refuse_naive_times():
    with pytest.raises(ValueError, match="timezone-aware"):
        MetricSample("heart_rate", 60, "bpm", datetime.datetime(2024, 3, 1, 8), "fhir", None)
