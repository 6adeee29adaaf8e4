"""interop.apple_health: streaming export.xml / export.zip → samples, nutrition entries, summary."""

from __future__ import annotations

import datetime
import io
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from interop.apple_health import (
    AppleHealthFormatError,
    AppleHealthSummary,
    iter_apple_health,
    parse_apple_health,
)
from interop.records import MetricSample

FIXTURE = Path(__file__).parent / "fixtures" / "export.xml"
PST = datetime.timezone(datetime.timedelta(hours=-8))
CET = datetime.timezone(datetime.timedelta(hours=1))

HEADER = b'<?xml version="1.0" encoding="UTF-8"?>\n<HealthData locale="en_US">\n'
FOOTER = b"</HealthData>\n"


def record(record_type, value, unit="", start="2024-03-01 08:00:00 -0800", end=None, source="Watch") -> bytes:
    end = end or start
    unit_attr = f' unit="{unit}"' if unit else ""
    return (
        f'<Record type="{record_type}" sourceName="{source}"{unit_attr} creationDate="{end}" '
        f'startDate="{start}" endDate="{end}" value="{value}"/>\n'
    ).encode()


def export(*records: bytes) -> io.BytesIO:
    return io.BytesIO(HEADER + b"".join(records) + FOOTER)


@pytest.fixture(scope="module")
def parsed():
    return parse_apple_health(FIXTURE)


def by_type(samples, metric_type) -> list[MetricSample]:
    return [s for s in samples if s.metric_type == metric_type]


# --- the fixture, type by type ------------------------------------------------------------


def test_heart_rate_and_resting(parsed):
    samples, _, _ = parsed
    assert [(s.value, s.recorded_at) for s in by_type(samples, "heart_rate")] == [
        (62, datetime.datetime(2024, 3, 1, 7, 59, tzinfo=PST)),
        (71, datetime.datetime(2024, 3, 1, 12, 0, tzinfo=PST)),
    ]
    (resting,) = by_type(samples, "resting_heart_rate")
    assert (resting.value, resting.unit) == (55, "bpm")
    assert all(s.source == "apple_health" for s in samples)
    assert by_type(samples, "heart_rate")[0].notes == "Apple Health: Ada\u2019s Apple Watch"


def test_weight_from_pounds_and_kilograms(parsed):
    samples, _, _ = parsed
    assert [round(s.value, 2) for s in by_type(samples, "weight")] == [69.99, 70.2]
    assert {s.unit for s in by_type(samples, "weight")} == {"kg"}


def test_blood_pressure_comes_from_the_correlation_only(parsed):
    samples, _, summary = parsed
    (reading,) = by_type(samples, "blood_pressure")
    assert (reading.value, reading.secondary_value, reading.unit) == (118, 76, "mmHg")
    assert reading.recorded_at == datetime.datetime(2024, 3, 1, 8, 30, tzinfo=PST)
    skipped = {(s["type"], s["reason"]): s["count"] for s in summary.as_dict()["skipped"]}
    assert (
        skipped[("HKQuantityTypeIdentifierBloodPressureSystolic", "read from its blood pressure correlation")]
        == 1
    )


def test_glucose_in_mg_dl_and_mmol_with_molar_mass(parsed):
    samples, _, _ = parsed
    mg, mmol = by_type(samples, "blood_glucose")
    assert mg.value == 95
    assert mmol.value == pytest.approx(5.5 * 18.01558800000541)
    assert mmol.unit == "mg/dL"


def test_oxygen_fraction_becomes_percent_and_temperature_celsius(parsed):
    samples, _, _ = parsed
    (spo2,) = by_type(samples, "oxygen_saturation")
    assert (spo2.value, spo2.unit) == (97, "%")
    assert [round(s.value, 2) for s in by_type(samples, "body_temperature")] == [37.0, 36.8]


def test_workout_becomes_exercise_minutes(parsed):
    samples, _, _ = parsed
    (workout,) = by_type(samples, "exercise")
    assert (workout.value, workout.unit) == (30.5, "min")
    assert workout.notes.startswith("Running")


def test_steps_are_one_total_per_local_day_without_double_counting(parsed):
    samples, _, _ = parsed
    steps = {s.external_id: s for s in by_type(samples, "steps")}
    # iPhone 1200 + 3000 + 500 (23:30 local, already 2 March in UTC) vs Watch 1100 + 2900.
    assert steps["hk:steps:2024-03-01"].value == 4700
    assert steps["hk:steps:2024-03-01"].recorded_at == datetime.datetime(2024, 3, 1, 12, tzinfo=PST)
    assert steps["hk:steps:2024-03-02"].value == 800
    # The record's own offset decides the day: 00:30 +0100 is 5 March there.
    assert steps["hk:steps:2024-03-05"].value == 1000
    assert steps["hk:steps:2024-03-05"].recorded_at == datetime.datetime(2024, 3, 5, 12, tzinfo=CET)


def test_sleep_is_asleep_time_per_night_ending_that_day(parsed):
    samples, _, summary = parsed
    nights = {s.external_id: s for s in by_type(samples, "sleep")}
    night = nights["hk:sleep:2024-03-02"]
    # Watch stages 22:40-06:30 with an awake gap 01:30-01:40 that a second app fills:
    # the union is 7 h 50 min. In-bed time is not sleep.
    assert night.value == 7.83
    assert night.recorded_at == datetime.datetime(2024, 3, 2, 6, 30, tzinfo=PST)
    assert night.unit == "h"
    # Sleep ending after 18:00 belongs to the coming night, recorded on that day.
    evening = nights["hk:sleep:2024-03-04"]
    assert evening.value == 0.5
    assert evening.recorded_at == datetime.datetime(2024, 3, 4, 0, 0, tzinfo=PST)
    reasons = {s["reason"] for s in summary.as_dict()["skipped"] if s["type"].endswith("SleepAnalysis")}
    assert reasons == {"not asleep (InBed)", "not asleep (Awake)"}


def test_dietary_records_are_daily_totals(parsed):
    _, entries, _ = parsed
    by_id = {e.external_id: e for e in entries}
    water = by_id["hk:water:2024-03-01"]
    assert (water.meal_type, water.water_ml, water.calories) == ("water", 986.6, None)  # 250 + 500 + 8 fl oz
    food = by_id["hk:food:2024-03-01"]
    # 450 kcal + 2092 kJ; the food correlation's copy of the 450 kcal is not counted again.
    assert (food.meal_type, food.calories, food.protein_g, food.carbs_g, food.fat_g, food.water_ml) == (
        "snack",
        950.0,
        50.0,
        60.0,
        15.0,
        None,
    )
    assert food.logged_at == datetime.datetime(2024, 3, 1, 12, tzinfo=PST)
    assert by_id["hk:water:2024-03-02"].water_ml == 300
    assert "hk:food:2024-03-02" not in by_id
    assert food.as_log_fields() == {
        "meal_type": "snack",
        "description": "Apple Health daily nutrition total",
        "calories": 950.0,
        "protein_g": 50.0,
        "carbs_g": 60.0,
        "fat_g": 15.0,
        "water_ml": None,
        "logged_at": "2024-03-01T12:00:00-08:00",
        "source": "apple_health",
        "external_id": "hk:food:2024-03-01",
    }


def test_summary_counts_and_reasons(parsed):
    _, _, summary = parsed
    report = summary.as_dict()
    assert report["export_date"] == "2024-03-06T09:00:00-08:00"
    assert report["metrics"] == {
        "blood_glucose": 2,
        "blood_pressure": 1,
        "body_temperature": 2,
        "exercise": 1,
        "heart_rate": 2,
        "oxygen_saturation": 1,
        "resting_heart_rate": 1,
        "sleep": 2,
        "steps": 3,
        "weight": 2,
    }
    assert report["nutrition"] == {"food": 1, "water": 2}
    skipped = {(s["type"], s["reason"]): s["count"] for s in report["skipped"]}
    assert (
        skipped[
            (
                "HKQuantityTypeIdentifierHeartRate",
                "value outside the valid range for heart rate (20 to 250 bpm).",
            )
        ]
        == 1
    )
    assert skipped[("HKQuantityTypeIdentifierHeartRate", "missing or unreadable startDate")] == 1
    assert skipped[("HKQuantityTypeIdentifierActiveEnergyBurned", "type not imported")] == 1
    assert skipped[("HKCorrelationTypeIdentifierFood", "its records are read from the top level")] == 1
    assert skipped[("ActivitySummary", "not imported")] == 1
    assert report["records_read"] == 44


def test_external_ids_are_stable_unique_and_fit(parsed):
    samples, entries, _ = parsed
    again_samples, again_entries, _ = parse_apple_health(FIXTURE)
    ids = [r.external_id for r in [*samples, *entries]]
    assert ids == [r.external_id for r in [*again_samples, *again_entries]]
    assert len(ids) == len(set(ids))
    assert all(len(i) <= 128 for i in ids)


def test_samples_map_onto_bulk_ingest_samples(parsed):
    samples, _, _ = parsed
    ingest = by_type(samples, "blood_pressure")[0].as_ingest()
    assert ingest == {
        "metric_type": "blood_pressure",
        "value": 118.0,
        "secondary_value": 76.0,
        "unit": "mmHg",
        "recorded_at": "2024-03-01T08:30:00-08:00",
        "source": "apple_health",
        "external_id": ingest["external_id"],
        "notes": "Apple Health: Omron",
    }


# --- zip uploads --------------------------------------------------------------------------


def _zip(members: dict[str, bytes]) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    buffer.seek(0)
    return buffer


def test_zip_export_is_read_from_its_member(parsed, tmp_path):
    upload = _zip(
        {
            "apple_health_export/export_cda.xml": b"<ClinicalDocument/>",
            "apple_health_export/export.xml": FIXTURE.read_bytes(),
            "apple_health_export/workout-routes/route_1.gpx": b"<gpx/>",
        }
    )
    samples, entries, summary = parse_apple_health(upload)
    expected_samples, expected_entries, _ = parse_apple_health(FIXTURE)
    assert samples == expected_samples and entries == expected_entries
    assert summary.records_read == 44
    path = tmp_path / "export.zip"
    path.write_bytes(upload.getvalue())
    assert parse_apple_health(path)[0] == expected_samples


def test_zip_with_export_at_top_level_is_accepted():
    samples, _, _ = parse_apple_health(
        _zip({"export.xml": HEADER + record("HKQuantityTypeIdentifierHeartRate", 60, "count/min") + FOOTER})
    )
    assert [s.value for s in samples] == [60]


def test_zip_without_an_export_is_refused():
    with pytest.raises(AppleHealthFormatError, match=r"no apple_health_export/export\.xml"):
        parse_apple_health(_zip({"notes.txt": b"hello"}))


def test_damaged_zip_is_refused():
    data = bytearray(_zip({"apple_health_export/export.xml": FIXTURE.read_bytes()}).getvalue())
    data[200:260] = b"\x00" * 60
    with pytest.raises(AppleHealthFormatError):
        parse_apple_health(io.BytesIO(bytes(data)))


# --- malformed and hostile input -------------------------------------------------------------


def test_wrong_root_element_is_refused():
    with pytest.raises(AppleHealthFormatError, match="root element is <ClinicalDocument>"):
        parse_apple_health(io.BytesIO(b"<ClinicalDocument/>"))


def test_malformed_xml_names_the_position():
    broken = HEADER + record("HKQuantityTypeIdentifierHeartRate", 60, "count/min") + b"<Record type="
    with pytest.raises(AppleHealthFormatError, match=r"line 4, column \d+"):
        parse_apple_health(io.BytesIO(broken))


def test_not_xml_at_all_is_refused():
    with pytest.raises(AppleHealthFormatError):
        parse_apple_health(io.BytesIO(b"%PDF-1.7 not an export"))


def test_control_characters_some_exports_contain_are_dropped():
    upload = export(record("HKQuantityTypeIdentifierHeartRate", 60, "count/min", source="Ada\x0bs Watch"))
    (sample,) = parse_apple_health(upload)[0]
    assert sample.notes == "Apple Health: Adas Watch"


def test_entity_expansion_bomb_is_refused_quickly():
    entities = "".join(f'<!ENTITY e{i} "{f"&e{i - 1};" * 10}">' for i in range(1, 10))
    bomb = (
        f'<?xml version="1.0"?><!DOCTYPE HealthData [<!ENTITY e0 "ha">{entities}]>'
        "<HealthData>&e9;</HealthData>"
    )
    with pytest.raises(AppleHealthFormatError):
        parse_apple_health(io.BytesIO(bomb.encode()))


def test_external_entities_are_never_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    document = (
        f'<?xml version="1.0"?><!DOCTYPE HealthData [<!ENTITY x SYSTEM "file://{secret}">]>'
        '<HealthData><Record type="HKQuantityTypeIdentifierHeartRate" sourceName="&x;" unit="count/min" '
        'startDate="2024-03-01 08:00:00 -0800" endDate="2024-03-01 08:00:00 -0800" value="60"/></HealthData>'
    )
    with pytest.raises(AppleHealthFormatError):
        parse_apple_health(io.BytesIO(document.encode()))


def test_size_cap_stops_the_read():
    upload = export(*[record("HKQuantityTypeIdentifierHeartRate", 60, "count/min")] * 200)
    with pytest.raises(AppleHealthFormatError, match="larger than the limit of 10000 bytes"):
        parse_apple_health(upload, max_xml_bytes=10_000)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (record("HKQuantityTypeIdentifierHeartRate", "fast", "count/min"), "value is not a number"),
        (record("HKQuantityTypeIdentifierHeartRate", "nan", "count/min"), "value is not a number"),
        (record("HKQuantityTypeIdentifierHeartRate", 1, "count/s"), "unit 'count/s' not supported"),
        (record("HKQuantityTypeIdentifierBodyMass", 70), "unit None not supported"),
        (record("HKQuantityTypeIdentifierStepCount", -5, "count"), "negative step count"),
        (record("HKQuantityTypeIdentifierDietaryWater", 2, "gal"), "unit 'gal' not supported"),
        (
            record(
                "HKCategoryTypeIdentifierSleepAnalysis",
                "HKCategoryValueSleepAnalysisAsleepCore",
                start="2024-03-02 06:00:00 -0800",
                end="2024-03-02 05:00:00 -0800",
            ),
            "endDate is not after startDate",
        ),
        (
            b'<Correlation type="HKCorrelationTypeIdentifierBloodPressure" sourceName="Omron" '
            b'startDate="2024-03-01 08:00:00 -0800" endDate="2024-03-01 08:00:00 -0800">'
            + record("HKQuantityTypeIdentifierBloodPressureSystolic", 120, "mmHg")
            + b"</Correlation>",
            "correlation lacks a systolic or diastolic record",
        ),
        (
            b'<Workout workoutActivityType="HKWorkoutActivityTypeYoga" duration="2" durationUnit="d" '
            b'sourceName="Watch" startDate="2024-03-01 08:00:00 -0800" endDate="2024-03-01 09:00:00 -0800"/>',
            "duration unit 'd' not supported",
        ),
    ],
)
def test_unusable_records_are_skipped_with_a_reason(bad, reason):
    samples, entries, summary = parse_apple_health(export(bad))
    assert samples == [] and entries == []
    (skipped,) = summary.as_dict()["skipped"]
    assert skipped["reason"].startswith(reason)


def test_a_day_over_the_step_range_is_skipped_as_a_daily_total():
    upload = export(record("HKQuantityTypeIdentifierStepCount", 150_000, "count"))
    samples, _, summary = parse_apple_health(upload)
    assert samples == []
    assert summary.as_dict()["skipped"][0]["reason"].startswith("daily total: value outside the valid range")


def test_blood_pressure_in_kpa_and_workout_without_duration():
    upload = export(
        b'<Correlation type="HKCorrelationTypeIdentifierBloodPressure" sourceName="Cuff" '
        b'startDate="2024-03-01 08:00:00 -0800" endDate="2024-03-01 08:00:00 -0800">'
        + record("HKQuantityTypeIdentifierBloodPressureSystolic", 16, "kPa")
        + record("HKQuantityTypeIdentifierBloodPressureDiastolic", 10.7, "kPa")
        + b"</Correlation>",
        b'<Workout workoutActivityType="HKWorkoutActivityTypeTraditionalStrengthTraining" sourceName="Watch" '
        b'startDate="2024-03-01 18:00:00 -0800" endDate="2024-03-01 18:45:00 -0800"/>',
    )
    bp, workout = parse_apple_health(upload)[0]
    assert (round(bp.value), round(bp.secondary_value)) == (120, 80)
    assert (workout.value, workout.notes) == (45, "Traditional Strength Training (Apple Health: Watch)")


def test_iso_dates_from_third_party_writers_are_accepted():
    upload = export(
        record("HKQuantityTypeIdentifierHeartRate", 60, "count/min", start="2024-03-01T08:00:00+02:00")
    )
    (sample,) = parse_apple_health(upload)[0]
    assert sample.recorded_at.utcoffset() == datetime.timedelta(hours=2)


# --- streaming ------------------------------------------------------------------------------


class GeneratedExport:
    """A large export.xml made on the fly, so the test itself holds no big buffer."""

    def __init__(self, records: int) -> None:
        self.pieces = self._pieces(records)
        self.pending = b""
        self.size = 0

    def _pieces(self, records):
        yield HEADER
        start = datetime.datetime(2020, 1, 1, tzinfo=PST)
        for n in range(records):
            moment = (start + datetime.timedelta(minutes=n)).strftime("%Y-%m-%d %H:%M:%S -0800")
            yield record("HKQuantityTypeIdentifierHeartRate", 50 + n % 60, "count/min", start=moment)
            if n % 10 == 0:
                yield record("HKQuantityTypeIdentifierStepCount", 100, "count", start=moment, source="iPhone")
        yield FOOTER

    def read(self, size=-1):
        while len(self.pending) < max(size, 1):
            piece = next(self.pieces, None)
            if piece is None:
                break
            self.pending += piece
        data, self.pending = self.pending[:size], self.pending[size:]
        if self.size == 0:
            self.peeked = data  # the opener sniffs the first bytes, then seeks back
        self.size += len(data)
        return data

    def tell(self):
        return self.size

    def seek(self, position):
        assert position == 0 and self.size == len(self.peeked)
        self.pending, self.size = self.peeked + self.pending, 0


def test_memory_stays_flat_however_many_records():
    source = GeneratedExport(12_000)
    counts = 0
    tracemalloc.start()
    try:
        for item in iter_apple_health(source):
            counts += 1
            del item
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert counts == 12_000 + 9  # every heart rate, one step total per day (12,000 minutes ≈ 8.3 days)
    assert source.size > 2_500_000
    # The tree is cleared as it goes: a few hundred kB whatever the size of the file.
    assert peak < min(1_000_000, source.size / 5), peak


def test_progress_is_reported_and_summary_fills_as_it_goes():
    seen = []
    summary = AppleHealthSummary()
    items = iter_apple_health(
        GeneratedExport(2_500),
        summary=summary,
        on_progress=lambda s: seen.append(s.records_read),
        progress_every=1000,
    )
    first = next(items)
    assert first.metric_type == "heart_rate" and summary.records_read >= 1
    list(items)
    assert seen == [1000, 2000]
    assert summary.records_read == 2_500 + 250
