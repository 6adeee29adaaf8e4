"""The rules and the ranking, on plain data: no database."""

from __future__ import annotations

import datetime
import itertools
import math

import pytest

from insights.engine import DayValue, NutritionDay, rank, recommend
from insights.engine.rules import (
    RULES,
    elevated_blood_glucose,
    elevated_blood_pressure,
    elevated_resting_heart_rate,
    goal_off_track,
    insufficient_sleep,
    low_steps,
    low_water_intake,
    missing_data,
    poor_nutrition,
    weight_management,
)
from insights.tests.helpers import TODAY, days_back, features, goal, nutrition_days, series

# --- low_steps ----------------------------------------------------------------------


def test_low_steps_fires_just_below_5000_with_exact_evidence():
    found = low_steps(features(metrics={"steps": series([4_999] * 10, skip_today=True)}))
    assert found is not None
    assert found.evidence == {
        "metric": "steps",
        "window_days": 30,
        "days_with_data": 10,
        "average": 4_999,
        "threshold": 5_000,
        "days_below_threshold": 10,
    }
    assert found.severity == "low"
    assert found.category == "activity" and found.related_metric_type == "steps"
    assert "4,999 steps a day over 10 days" in found.reasoning
    assert "in the last 30 days" in found.reasoning


def test_low_steps_silent_at_5000():
    assert low_steps(features(metrics={"steps": series([5_000] * 10, skip_today=True)})) is None


def test_low_steps_average_is_rounded_before_comparing():
    # 4,999.5 is shown as 5,000, so it must not be called "below 5,000".
    steps = series([4_999, 5_000] * 5, skip_today=True)
    assert low_steps(features(metrics={"steps": steps})) is None


@pytest.mark.parametrize(
    ("average", "severity"), [(4_000, "low"), (3_999, "medium"), (2_500, "medium"), (2_499, "high")]
)
def test_low_steps_severity_by_distance(average, severity):
    found = low_steps(features(metrics={"steps": series([average] * 14, skip_today=True)}))
    assert found.severity == severity


def test_low_steps_leaves_out_todays_running_total():
    steps = {**series([6_000] * 5, skip_today=True), TODAY: DayValue(200)}
    assert low_steps(features(metrics={"steps": steps})) is None


def test_low_steps_needs_three_days():
    assert low_steps(features(metrics={"steps": series([1_000] * 2, skip_today=True)})) is None
    assert low_steps(features(metrics={"steps": series([1_000] * 3, skip_today=True)})) is not None


def test_days_outside_the_window_are_ignored():
    old = {TODAY - datetime.timedelta(days=40 + n): DayValue(100) for n in range(10)}
    assert low_steps(features(metrics={"steps": old})) is None


# --- insufficient_sleep -------------------------------------------------------------


def test_insufficient_sleep_fires_just_below_7h_and_counts_short_nights():
    nights = [6.99] * 8 + [5.9, 5.5]
    found = insufficient_sleep(features(metrics={"sleep": series(nights)}))
    assert found.evidence == {
        "metric": "sleep",
        "window_days": 30,
        "days_with_data": 10,
        "average": 6.73,
        "threshold": 7.0,
        "nights_under_6h": 2,
        "short_night_threshold": 6.0,
        "unit": "h",
    }
    assert found.severity == "low"
    assert "6 h 44 min a night on average over 10 nights" in found.reasoning
    assert "2 of those nights were under 6 h" in found.reasoning


def test_insufficient_sleep_silent_at_7h():
    assert insufficient_sleep(features(metrics={"sleep": series([7.0] * 10)})) is None


def test_insufficient_sleep_fires_at_6_99():
    found = insufficient_sleep(features(metrics={"sleep": series([6.99] * 5)}))
    assert found.evidence["average"] == 6.99 and found.evidence["nights_under_6h"] == 0


def test_insufficient_sleep_counts_last_nights_sleep():
    # Sleep counts on the day the night ends: this morning's night is complete.
    found = insufficient_sleep(features(metrics={"sleep": series([5.0] * 3)}))
    assert found.evidence["days_with_data"] == 3


@pytest.mark.parametrize(("hours", "severity"), [(4.99, "high"), (5.99, "medium"), (6.5, "low")])
def test_insufficient_sleep_severity(hours, severity):
    assert insufficient_sleep(features(metrics={"sleep": series([hours] * 6)})).severity == severity


# --- elevated_resting_heart_rate ----------------------------------------------------


def test_resting_heart_rate_fires_just_above_85():
    found = elevated_resting_heart_rate(features(metrics={"resting_heart_rate": series([85.1] * 5)}))
    assert found.evidence["average"] == 85.1
    assert found.evidence["threshold"] == 85.0
    assert found.evidence["days_with_data"] == 5
    assert found.title == "Your resting heart rate is high"
    assert "85.1 bpm over 5 days" in found.reasoning


def test_resting_heart_rate_silent_at_85():
    assert elevated_resting_heart_rate(features(metrics={"resting_heart_rate": series([85.0] * 5)})) is None


def _baseline_then_recent(baseline: float, recent: float) -> dict:
    return series([baseline] * 23 + [recent] * 7)


def test_resting_heart_rate_rise_of_10_percent_over_own_baseline():
    found = elevated_resting_heart_rate(
        features(metrics={"resting_heart_rate": _baseline_then_recent(60, 66)})
    )
    assert found is not None
    assert found.evidence == {
        "metric": "resting_heart_rate",
        "window_days": 30,
        "days_with_data": 30,
        "average": 61.4,
        "threshold": 85.0,
        "baseline_average": 60.0,
        "baseline_days": 23,
        "recent_average": 66.0,
        "recent_days": 7,
        "rise_percent": 10.0,
        "rise_threshold_percent": 10.0,
        "unit": "bpm",
    }
    assert found.title == "Your resting heart rate is rising"
    assert found.severity == "low"
    assert found.reasoning == (
        "Over the last 7 days your resting heart rate averaged 66.0 bpm, 10.0 % above your own "
        "baseline of 60.0 bpm earlier in the window."
    )


def test_resting_heart_rate_rise_just_under_10_percent_is_silent():
    assert (
        elevated_resting_heart_rate(features(metrics={"resting_heart_rate": _baseline_then_recent(60, 65.9)}))
        is None
    )


def test_resting_heart_rate_rise_needs_a_baseline():
    # Only the recent week: no baseline to compare with, and 70 bpm is fine.
    assert elevated_resting_heart_rate(features(metrics={"resting_heart_rate": series([70] * 7)})) is None


# --- weight_management --------------------------------------------------------------


def test_bmi_at_25_fires():
    found = weight_management(features(metrics={"weight": series([72.25] * 3)}, height_cm=170))
    assert found.evidence == {
        "metric": "weight",
        "window_days": 30,
        "days_with_data": 3,
        "latest": 72.3,
        "unit": "kg",
        "height_cm": 170,
        "bmi": 25.0,
        "bmi_range": [18.5, 25.0],
        "trend_kg_per_week": None,
    }
    assert found.severity == "low"
    assert found.title == "Your BMI is above the healthy range"
    assert "BMI of 25.0" in found.reasoning


def test_bmi_just_under_25_is_silent():
    assert weight_management(features(metrics={"weight": series([71.96] * 3)}, height_cm=170)) is None


def test_bmi_just_under_18_5_fires_and_18_5_does_not():
    assert weight_management(features(metrics={"weight": series([53.46] * 3)}, height_cm=170)) is None
    found = weight_management(features(metrics={"weight": series([53.2] * 3)}, height_cm=170))
    assert found.evidence["bmi"] == 18.4
    assert found.title == "Your BMI is below the healthy range"
    assert found.severity == "medium"


def test_bmi_needs_height():
    assert weight_management(features(metrics={"weight": series([120] * 5)})) is None


def test_weight_in_pounds_for_people_who_think_in_pounds():
    found = weight_management(features(metrics={"weight": series([90] * 3)}, height_cm=170, weight_unit="lb"))
    assert "198.4 lb" in found.reasoning
    assert found.evidence["latest"] == 90.0 and found.evidence["unit"] == "kg"


def _linear(start: float, per_day: float, days: int) -> dict:
    return series([start + per_day * index for index in range(days)])


def test_weight_goal_flat_trend_fires():
    lose = goal(goal_type="weight_loss", metric_type="weight", target_value=70.0, priority="high")
    found = weight_management(features(metrics={"weight": series([75.0] * 14)}, height_cm=180, goals=[lose]))
    assert found.evidence["trend_kg_per_week"] == 0.0
    assert found.evidence["goal_direction"] == "lose"
    assert found.evidence["goal_target_kg"] == 70.0
    assert found.title == "Your weight is not moving toward your goal"
    assert found.severity == "medium"
    assert "stayed flat" in found.reasoning


def test_weight_goal_slow_loss_is_not_a_weight_finding():
    lose = goal(goal_type="weight_loss", metric_type="weight", target_value=70.0)
    weights = _linear(75.0, -0.01, 14)  # -0.07 kg a week: slow, but the right way
    assert weight_management(features(metrics={"weight": weights}, height_cm=180, goals=[lose])) is None


def test_weight_loss_faster_than_1kg_a_week_fires():
    lose = goal(goal_type="weight_loss", metric_type="weight", target_value=60.0)
    fast = weight_management(
        features(metrics={"weight": _linear(76.0, -1.01 / 7, 14)}, height_cm=180, goals=[lose])
    )
    assert fast.evidence["trend_kg_per_week"] == -1.01
    assert fast.title == "Your weight is changing faster than is safe"
    at_limit = weight_management(
        features(metrics={"weight": _linear(76.0, -1.0 / 7, 14)}, height_cm=180, goals=[lose])
    )
    assert at_limit is None


def test_weight_gain_goal_losing_fires():
    gain = goal(goal_type="weight_gain", metric_type="weight", target_value=70.0)
    found = weight_management(features(metrics={"weight": _linear(60.0, -0.05, 10)}, goals=[gain]))
    assert found.evidence["goal_direction"] == "gain"
    assert found.evidence["trend_kg_per_week"] == -0.35
    assert "gone down 0.35 kg a week" in found.reasoning
    assert "strength training" in " ".join(found.action_steps)


# --- poor_nutrition -----------------------------------------------------------------


def test_protein_just_under_10_percent_fires():
    found = poor_nutrition(features(nutrition=nutrition_days(5, calories=2_000, protein_g=49.5, fat_g=50)))
    assert found.evidence == {
        "metric": "nutrition",
        "window_days": 30,
        "days_with_data": 5,
        "average_calories": 2_000,
        "estimated_need": None,
        "need_method": None,
        "activity_factor": None,
        "calorie_ratio": None,
        "calorie_tolerance_percent": 25,
        "protein_percent": 9.9,
        "protein_min_percent": 10.0,
        "fat_percent": 22.5,
        "fat_max_percent": 35.0,
    }
    assert found.severity == "low"
    assert "Protein gave only 9.9 % of your energy" in found.reasoning


def test_protein_at_10_percent_and_fat_at_35_percent_are_silent():
    assert (
        poor_nutrition(features(nutrition=nutrition_days(5, calories=2_000, protein_g=50, fat_g=700 / 9)))
        is None
    )


def test_fat_just_over_35_percent_fires():
    found = poor_nutrition(features(nutrition=nutrition_days(5, calories=2_000, protein_g=100, fat_g=78)))
    assert found.evidence["fat_percent"] == 35.1
    assert "Fat gave 35.1 % of your energy" in found.reasoning


def _person_60kg(**extra):
    # Mifflin-St Jeor, woman, 40 y, 165 cm, 60 kg: 1,270.25 kcal at rest; x 1.375 = 1,747.
    return dict(metrics={"weight": series([60.0] * 3)}, age_years=40, sex="female", height_cm=165, **extra)


def test_calories_more_than_25_percent_under_need_fire():
    found = poor_nutrition(
        features(nutrition=nutrition_days(7, calories=1_300, protein_g=80, fat_g=40), **_person_60kg())
    )
    assert found.evidence["estimated_need"] == 1_747
    assert found.evidence["need_method"] == "mifflin_st_jeor"
    assert found.evidence["activity_factor"] == 1.375
    assert found.evidence["calorie_ratio"] == 0.74
    assert found.severity == "medium"
    assert "1,300 kcal a day on average over 7 days" in found.reasoning
    assert "26 % below the 1,747 kcal" in found.reasoning


def test_calories_within_25_percent_of_need_are_silent():
    eaten = nutrition_days(7, calories=1_320, protein_g=80, fat_g=40)
    assert poor_nutrition(features(nutrition=eaten, **_person_60kg())) is None


def test_calorie_need_uses_activity_from_steps():
    person = _person_60kg()
    person["metrics"]["steps"] = series([12_000] * 7, skip_today=True)
    found = poor_nutrition(
        features(nutrition=nutrition_days(7, calories=3_500, protein_g=150, fat_g=100), **person)
    )
    assert found.evidence["activity_factor"] == 1.725
    assert found.evidence["estimated_need"] == 2_191
    assert found.evidence["calorie_ratio"] == 1.6
    assert found.severity == "high"


def test_no_calorie_need_for_children():
    eaten = nutrition_days(7, calories=900, protein_g=40, fat_g=30)
    assert poor_nutrition(features(nutrition=eaten, **{**_person_60kg(), "age_years": 12})) is None


def test_poor_nutrition_leaves_out_today():
    today_only = {TODAY: NutritionDay(calories=300, protein_g=2, fat_g=30)}
    assert (
        poor_nutrition(features(nutrition={**nutrition_days(2, calories=2_000, protein_g=20), **today_only}))
        is None
    )


# --- low_water_intake ---------------------------------------------------------------


def test_low_water_fires_just_below_2000():
    found = low_water_intake(features(nutrition=nutrition_days(4, water_ml=1_999)))
    assert found.evidence == {
        "metric": "water",
        "window_days": 30,
        "days_with_data": 4,
        "average": 1_999,
        "threshold": 2_000,
        "unit": "ml",
    }
    assert found.severity == "low"
    assert "1,999 ml of water a day on average over 4 days" in found.reasoning


def test_low_water_silent_at_2000():
    assert low_water_intake(features(nutrition=nutrition_days(4, water_ml=2_000))) is None


def test_days_without_water_logged_do_not_count_as_zero():
    eaten = {
        **nutrition_days(4, water_ml=2_500),
        **days_back([NutritionDay(calories=500)] * 8, skip_today=True),
    }
    # The 8 newest days have meals but no water: they are not "0 ml" days.
    assert low_water_intake(features(nutrition=eaten)) is None


# --- elevated_blood_pressure --------------------------------------------------------


def _bp(systolic: float, diastolic: float, days: int = 5) -> dict:
    return series([systolic] * days, secondary=diastolic, maximum=systolic, secondary_max=diastolic)


def test_blood_pressure_at_130_systolic_fires():
    found = elevated_blood_pressure(features(metrics={"blood_pressure": _bp(130, 79)}))
    assert found.evidence == {
        "metric": "blood_pressure",
        "window_days": 30,
        "days_with_data": 5,
        "average_systolic": 130,
        "average_diastolic": 79,
        "threshold_systolic": 130,
        "threshold_diastolic": 80,
        "highest_systolic": 130,
        "highest_diastolic": 79,
        "crisis_days": 0,
        "crisis_threshold_systolic": 180,
        "crisis_threshold_diastolic": 120,
        "unit": "mmHg",
    }
    assert found.severity == "low"
    assert "averaged 130/79 mmHg over 5 days" in found.reasoning


def test_blood_pressure_at_80_diastolic_fires_and_129_79_does_not():
    assert elevated_blood_pressure(features(metrics={"blood_pressure": _bp(129, 80)})) is not None
    assert elevated_blood_pressure(features(metrics={"blood_pressure": _bp(129, 79)})) is None


def test_blood_pressure_stage_two_is_medium():
    assert elevated_blood_pressure(features(metrics={"blood_pressure": _bp(141, 85)})).severity == "medium"


def test_one_crisis_reading_is_high_even_on_one_day():
    day = {TODAY: DayValue(150, maximum=180, secondary=90, secondary_max=100)}
    found = elevated_blood_pressure(features(metrics={"blood_pressure": day}))
    assert found.severity == "high"
    assert found.confidence == 1.0
    assert found.evidence["crisis_days"] == 1
    assert found.evidence["highest_systolic"] == 180
    assert found.evidence["average_systolic"] is None  # one day is not enough for an average
    assert "reached 180/100 mmHg" in found.reasoning


def test_reading_just_under_crisis_on_one_day_is_silent():
    day = {TODAY: DayValue(150, maximum=179, secondary=90, secondary_max=119)}
    assert elevated_blood_pressure(features(metrics={"blood_pressure": day})) is None


# --- elevated_blood_glucose ---------------------------------------------------------


def test_fasting_glucose_at_100_fires_and_99_does_not():
    found = elevated_blood_glucose(features(metrics={"blood_glucose": series([140] * 4, minimum=100)}))
    assert found.evidence == {
        "metric": "blood_glucose",
        "window_days": 30,
        "days_with_data": 4,
        "average_daily_lowest": 100,
        "threshold": 100,
        "diabetes_threshold": 126,
        "unit": "mg/dL",
    }
    assert found.severity == "medium"
    assert "prediabetes range" in found.reasoning
    assert elevated_blood_glucose(features(metrics={"blood_glucose": series([140] * 4, minimum=99)})) is None


def test_fasting_glucose_at_126_is_high():
    found = elevated_blood_glucose(features(metrics={"blood_glucose": series([150] * 4, minimum=126)}))
    assert found.severity == "high"
    assert "suggests diabetes" in found.reasoning


# --- goal_off_track -----------------------------------------------------------------


def _weight_goal(**values):
    values.setdefault("target_date", TODAY + datetime.timedelta(days=60))
    return goal(
        7, goal_type="weight_loss", metric_type="weight", target_value=70.0, start_value=84.0, **values
    )


def test_goal_behind_schedule_projects_completion_after_target_date():
    # 0.125 kg a day down from 83.625 to 80.0: 10 kg to go is 80 more days.
    weights = _linear(83.625, -0.125, 30)
    found = goal_off_track(features(metrics={"weight": weights}, goals=[_weight_goal()]))
    assert found.evidence == {
        "goal_id": 7,
        "goal_type": "weight_loss",
        "priority": "medium",
        "metric": "weight",
        "window_days": 30,
        "days_with_data": 30,
        "start_value": 84.0,
        "current_value": 80.0,
        "target_value": 70.0,
        "target_date": "2026-05-30",
        "trend_per_week": -0.88,
        "projected_completion": "2026-06-19",
        "status": "behind_schedule",
        "off_track_goal_ids": [7],
    }
    assert found.severity == "low"
    assert "around 19 June 2026, after its target date of 30 May 2026" in found.reasoning


def test_goal_on_pace_is_silent():
    weights = _linear(83.625, -0.125, 30)
    on_time = _weight_goal(target_date=TODAY + datetime.timedelta(days=80))
    assert goal_off_track(features(metrics={"weight": weights}, goals=[on_time])) is None
    one_day_short = _weight_goal(target_date=TODAY + datetime.timedelta(days=79))
    assert goal_off_track(features(metrics={"weight": weights}, goals=[one_day_short])) is not None


def test_goal_not_progressing_and_overdue():
    steps = goal(3, goal_type="step_count", metric_type="steps", target_value=10_000, priority="high",
                 target_date=TODAY + datetime.timedelta(days=30))  # fmt: skip
    flat = features(metrics={"steps": series([6_000] * 20, skip_today=True)}, goals=[steps])
    found = goal_off_track(flat)
    assert found.evidence["status"] == "not_progressing"
    assert found.evidence["projected_completion"] is None
    assert found.evidence["current_value"] == 6_000
    assert found.severity == "medium"
    overdue = goal(
        4, goal_type="step_count", target_value=10_000, target_date=TODAY - datetime.timedelta(days=1)
    )
    found = goal_off_track(
        features(metrics={"steps": series([6_000] * 20, skip_today=True)}, goals=[overdue])
    )
    assert found.evidence["status"] == "overdue"
    assert found.evidence["metric"] == "steps"  # implied by the goal type


def test_reached_goal_is_not_off_track():
    reached = goal(goal_type="step_count", target_value=5_000, target_date=TODAY + datetime.timedelta(days=3))
    assert (
        goal_off_track(features(metrics={"steps": series([6_000] * 20, skip_today=True)}, goals=[reached]))
        is None
    )


def test_goal_needs_a_week_of_data():
    steps = goal(goal_type="step_count", target_value=10_000, target_date=TODAY + datetime.timedelta(days=3))
    assert (
        goal_off_track(features(metrics={"steps": series([100] * 6, skip_today=True)}, goals=[steps])) is None
    )


def test_most_important_off_track_goal_leads_and_others_are_listed():
    low = goal(1, goal_type="step_count", target_value=10_000, priority="low", target_date=TODAY)
    high = goal(2, goal_type="better_sleep", target_value=8, priority="high", target_date=TODAY)
    data = {"steps": series([3_000] * 10, skip_today=True), "sleep": series([6.0] * 10)}
    found = goal_off_track(features(metrics=data, goals=[low, high]))
    assert found.evidence["goal_id"] == 2
    assert found.evidence["off_track_goal_ids"] == [2, 1]
    assert "1 other goal is off track too" in found.reasoning


def test_hydration_goal_follows_water_logs():
    water = goal(goal_type="hydration", target_value=2_500, target_date=TODAY + datetime.timedelta(days=10))
    found = goal_off_track(features(nutrition=nutrition_days(10, water_ml=1_500), goals=[water]))
    assert found.evidence["metric"] == "water"
    assert found.related_metric_type == ""


# --- missing_data -------------------------------------------------------------------


def test_a_new_person_gets_tracking_advice():
    found = missing_data(features())
    assert found.code == "missing_data" and found.category == "tracking" and found.severity == "low"
    assert found.evidence == {
        "window_days": 30,
        "missing": ["steps", "sleep", "weight", "meals", "water"],
        "sparse": [],
        "days_with_data": {"steps": 0, "sleep": 0, "weight": 0, "meals": 0, "water": 0},
        "min_days": 3,
    }
    assert found.title == "Start tracking to get personal advice"
    assert len(found.action_steps) == 5


def test_missing_data_names_the_missing_and_the_sparse():
    data = features(
        metrics={"steps": series([8_000] * 5, skip_today=True), "weight": series([70.0])},
        nutrition=nutrition_days(5, calories=2_000, water_ml=2_000),
    )
    found = missing_data(data)
    assert found.evidence["missing"] == ["sleep"]
    assert found.evidence["sparse"] == ["weight"]
    assert "No sleep logged in the last 30 days. Only weight on 1 day." in found.reasoning
    assert found.related_metric_type == "sleep"


def test_missing_data_includes_what_goals_follow():
    data = features(
        metrics={name: series([1.0] * 5) for name in ("steps", "sleep", "weight")},
        nutrition=nutrition_days(5, calories=2_000, water_ml=2_000),
        goals=[goal(goal_type="custom", metric_type="blood_pressure", target_value=120)],
    )
    found = missing_data(data)
    assert found.evidence["missing"] == ["blood_pressure"]


def test_nothing_missing_is_silent():
    data = features(
        metrics={name: series([1.0] * 5) for name in ("steps", "sleep", "weight")},
        nutrition=nutrition_days(5, calories=2_000, water_ml=2_000),
    )
    assert missing_data(data) is None


# --- Whole engine -------------------------------------------------------------------


def test_a_person_without_data_gets_only_tracking_advice():
    result = recommend(features())
    assert [item.code for item in result] == ["missing_data"]
    assert result[0].rank == 1
    assert result[0].score == 0.5


def test_one_day_of_worrying_data_gives_no_low_confidence_rule():
    one_day = features(
        metrics={
            "steps": {TODAY - datetime.timedelta(days=1): DayValue(500)},
            "sleep": {TODAY: DayValue(3.0)},
            "resting_heart_rate": {TODAY: DayValue(110)},
            "weight": {TODAY: DayValue(150.0)},
            "blood_pressure": {TODAY: DayValue(160, maximum=160, secondary=100, secondary_max=100)},
            "blood_glucose": {TODAY: DayValue(200, minimum=180)},
        },
        nutrition=nutrition_days(1, calories=5_000, protein_g=10, fat_g=300, water_ml=100),
        height_cm=160,
        age_years=50,
        sex="male",
    )
    assert [item.code for item in recommend(one_day)] == ["missing_data"]


def test_ranking_follows_goals():
    data = {"steps": series([3_000] * 14, skip_today=True), "sleep": series([5.5] * 14)}
    # Same severity, same coverage: equal scores, ordered by code.
    plain = recommend(features(metrics=data))
    assert [item.code for item in plain[:2]] == ["insufficient_sleep", "low_steps"]
    assert plain[0].score == plain[1].score == 2.0
    walker = goal(goal_type="step_count", target_value=3_000, priority="high", title="Walk more")
    boosted = recommend(features(metrics=data, goals=[walker]))
    assert [item.code for item in boosted[:2]] == ["low_steps", "insufficient_sleep"]
    assert boosted[0].score == 3.0
    assert "high-priority goal “Walk more”" in boosted[0].reasoning
    modest = goal(goal_type="step_count", target_value=3_000, priority="low")
    assert recommend(features(metrics=data, goals=[modest]))[0].score == 2.2


def test_ranking_keeps_five_in_a_stable_order():
    data = features(
        metrics={
            "steps": series([1_000] * 14, skip_today=True),
            "sleep": series([4.0] * 14),
            "resting_heart_rate": series([105.0] * 14),
            "weight": series([110.0] * 14),
            "blood_pressure": _bp(150, 95, days=14),
            "blood_glucose": series([180] * 14, minimum=140),
        },
        nutrition=nutrition_days(14, calories=4_000, protein_g=50, fat_g=200, water_ml=500),
        height_cm=170,
        age_years=50,
        sex="male",
    )
    first = recommend(data)
    assert [item.rank for item in first] == [1, 2, 3, 4, 5]
    assert [item.score for item in first] == sorted((item.score for item in first), reverse=True)
    again = recommend(data)
    assert [item.code for item in again] == [item.code for item in first]
    every = rank([rule(data) for rule in RULES if rule(data) is not None], limit=20)
    assert len(every) > 5
    # Equal scores are ordered by code.
    for one, two in itertools.pairwise(every):
        assert (-one.score, one.code) <= (-two.score, two.code)


def test_as_dict_has_the_api_fields():
    item = recommend(features())[0].as_dict()
    assert set(item) == {
        "rank", "code", "title", "category", "severity", "score", "reasoning", "action_steps",
        "evidence", "related_metric_type",
    }  # fmt: skip


@pytest.mark.parametrize(
    "value",
    [0.0, -5.0, 1e12, float("nan"), float("inf"), 1e-300],
)
def test_extreme_values_never_crash(value):
    data = features(
        metrics={
            name: series([value] * 10, minimum=value, maximum=value, secondary=value, secondary_max=value)
            for name in ("steps", "sleep", "resting_heart_rate", "weight", "blood_pressure", "blood_glucose")
        },
        nutrition=nutrition_days(10, calories=value, protein_g=value, fat_g=value, water_ml=value),
        goals=[
            goal(1, goal_type="weight_loss", target_value=value, target_date=TODAY),
            goal(2, goal_type="step_count", target_value=10_000, start_value=value, target_date=TODAY),
            goal(3, goal_type="custom", metric_type="heart_rate", target_value=60, target_date=None),
        ],
        height_cm=value if math.isfinite(value) and value > 0 else None,
        age_years=40,
        sex="male",
    )
    result = recommend(data)
    assert 1 <= len(result) <= 5
    for item in result:
        assert math.isfinite(item.score)


def test_window_of_one_day_never_crashes():
    data = features(metrics={"steps": series([1_000] * 40), "sleep": series([4.0] * 40)}, window_days=1)
    assert [item.code for item in recommend(data)] == ["missing_data"]


def test_reached_weight_goal_is_not_a_weight_finding():
    lose = goal(goal_type="weight_loss", metric_type="weight", target_value=80.0)
    assert (
        weight_management(features(metrics={"weight": series([75.0] * 14)}, height_cm=180, goals=[lose]))
        is None
    )


def test_custom_weight_goal_direction_comes_from_the_data():
    custom = goal(goal_type="custom", metric_type="weight", target_value=70.0)
    found = weight_management(
        features(metrics={"weight": series([75.0] * 14)}, height_cm=180, goals=[custom])
    )
    assert found.evidence["goal_direction"] == "lose"


def test_goal_is_judged_on_the_pace_since_it_was_set():
    steps = series([6_000] * 20, skip_today=True)
    young = goal(goal_type="step_count", target_value=10_000, target_date=TODAY + datetime.timedelta(days=5),
                 created_on=TODAY - datetime.timedelta(days=4))  # fmt: skip
    assert goal_off_track(features(metrics={"steps": steps}, goals=[young])) is None
    older = goal(goal_type="step_count", target_value=10_000, target_date=TODAY + datetime.timedelta(days=5),
                 created_on=TODAY - datetime.timedelta(days=10))  # fmt: skip
    found = goal_off_track(features(metrics={"steps": steps}, goals=[older]))
    assert found.evidence["days_with_data"] == 10  # from the day it was set to yesterday
