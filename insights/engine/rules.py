"""The rules: pure functions from one person's features to at most one candidate each.

Every rule needs at least ``MIN_DAYS`` days of the data it reads (a blood pressure
reading in the crisis range is the one exception: the reading itself is the evidence),
puts the numbers it used in ``evidence`` (rounded as shown, and compared as shown, so
what the person reads always agrees with whether the rule fired), and never divides by
zero or trusts a value to be present.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from insights.engine.features import (
    KCAL_PER_G_FAT,
    KCAL_PER_G_PROTEIN,
    GoalFact,
    UserFeatures,
)
from insights.engine.numbers import (
    finite,
    fmt,
    fmt_hours,
    fmt_weight,
    mean,
    plural,
    ratio,
    rnd,
    slope_per_day,
)
from metrics.registry import METRIC_TYPES

LOW, MEDIUM, HIGH = "low", "medium", "high"
SEVERITY_ORDER = {LOW: 1, MEDIUM: 2, HIGH: 3}

MIN_DAYS = 3  # days of data a rule needs before it says anything
FULL_CONFIDENCE_DAYS = 14  # this many days (or the whole window, if shorter) is full confidence
TRACKING_CONFIDENCE = 0.5  # missing_data: advice about logging, not a finding about health

STEPS_THRESHOLD = 5_000
SLEEP_THRESHOLD_H = 7.0
SHORT_NIGHT_H = 6.0
RESTING_HR_THRESHOLD = 85.0
RESTING_HR_RISE_PERCENT = 10.0
RECENT_DAYS = 7  # resting heart rate: the recent part of the window, compared with the rest
BMI_LOW, BMI_HIGH = 18.5, 25.0
MIN_HEIGHT_CM, MAX_HEIGHT_CM = 30.0, 272.0  # the profile's valid range; anything else is bad data
WEIGHT_TREND_MIN_SPAN_DAYS = 7
SAFE_WEIGHT_CHANGE_KG_WEEK = 1.0
CALORIE_BAND = 0.25  # intake more than 25 % away from the estimated need
CALORIE_EXTREME_BAND = 0.40
PROTEIN_MIN_PERCENT = 10.0
FAT_MAX_PERCENT = 35.0
DEFAULT_ACTIVITY_FACTOR = 1.375
ADULT_AGE = 18
WEIGHT_RANGE = METRIC_TYPES["weight"]
WATER_THRESHOLD_ML = 2_000
BP_SYSTOLIC, BP_DIASTOLIC = 130, 80
BP_STAGE2_SYSTOLIC, BP_STAGE2_DIASTOLIC = 140, 90
BP_CRISIS_SYSTOLIC, BP_CRISIS_DIASTOLIC = 180, 120
GLUCOSE_FASTING_THRESHOLD = 100
GLUCOSE_DIABETES_THRESHOLD = 126
GOAL_TREND_MIN_SPAN_DAYS = 7
GOAL_HORIZON_DAYS = 3_650  # a projection beyond ten years is "not at this rate"

# What missing_data looks for: the basics every person benefits from logging.
TRACKED_ITEMS = ("steps", "sleep", "weight", "meals", "water")
_ITEM_LABELS = {
    "steps": "steps",
    "sleep": "sleep",
    "weight": "weight",
    "meals": "meals",
    "water": "water",
    "resting_heart_rate": "resting heart rate",
    "heart_rate": "heart rate",
    "blood_pressure": "blood pressure",
    "blood_glucose": "blood glucose",
    "exercise": "exercise",
    "oxygen_saturation": "oxygen saturation",
    "body_temperature": "body temperature",
}
_TRACKING_STEPS = {
    "steps": "Carry your phone or wear a step counter and let it sync steps automatically.",
    "sleep": "Log your sleep each morning, or let a watch or sleep app sync it.",
    "weight": "Weigh yourself once or twice a week, in the morning before breakfast.",
    "meals": "Log your main meals for a few days, even roughly; calories and protein are enough.",
    "water": "Log the water you drink (a glass is about 250 ml).",
}

_UPWARD_GOAL_TYPES = frozenset({"step_count", "better_sleep", "more_exercise", "hydration"})

# A goal's type implies the metric it follows when the goal has no metric_type of its own.
GOAL_TYPE_METRIC = {
    "weight_loss": "weight",
    "weight_gain": "weight",
    "step_count": "steps",
    "better_sleep": "sleep",
    "more_exercise": "exercise",
    "hydration": "water",
}


@dataclass(frozen=True)
class Recommendation:
    """A candidate from one rule; ``score`` and ``rank`` are set by the ranking."""

    code: str
    title: str
    category: str
    severity: str
    reasoning: str
    action_steps: tuple[str, ...]
    evidence: dict[str, Any]
    related_metric_type: str = ""
    description: str = ""
    confidence: float = 1.0
    # Goal types and metric types this finding is about: goals of those raise its rank.
    goal_links: frozenset[str] = field(default_factory=frozenset)
    score: float = 0.0
    rank: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The API's recommendation object."""
        return {
            "rank": self.rank,
            "code": self.code,
            "title": self.title,
            "category": self.category,
            "severity": self.severity,
            "score": self.score,
            "reasoning": self.reasoning,
            "action_steps": list(self.action_steps),
            "evidence": self.evidence,
            "related_metric_type": self.related_metric_type,
        }


def coverage_confidence(days_used: int, window_days: int) -> float:
    """How much the data supports a finding: the share of ``FULL_CONFIDENCE_DAYS`` (or
    of the whole window, if shorter) that had data, at most 1."""
    full = max(1, min(window_days, FULL_CONFIDENCE_DAYS))
    return rnd(min(1.0, days_used / full), 3)


def _worst(*severities: str | None) -> str:
    return max((s for s in severities if s), key=SEVERITY_ORDER.__getitem__)


def _item_label(item: str) -> str:
    return _ITEM_LABELS.get(item, item.replace("_", " "))


def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


# --- Activity ------------------------------------------------------------------------


def low_steps(features: UserFeatures) -> Recommendation | None:
    """Average daily steps under 5,000; severity by how far under."""
    days = finite(features.metric_values("steps"))
    if len(days) < MIN_DAYS:
        return None
    average = rnd(mean(days))
    if average >= STEPS_THRESHOLD:
        return None
    below = sum(1 for steps in days if steps < STEPS_THRESHOLD)
    severity = HIGH if average < 2_500 else MEDIUM if average < 4_000 else LOW
    next_target = min(STEPS_THRESHOLD, math.ceil((average + 1_500) / 500) * 500)
    window = features.window_days
    return Recommendation(
        code="low_steps",
        title="Move more: your daily steps are low",
        category="activity",
        severity=severity,
        reasoning=(
            f"You averaged {fmt(average)} steps a day over {plural(len(days), 'day')} with step data "
            f"in the last {plural(window, 'day')}, below the {fmt(STEPS_THRESHOLD)} a day under which "
            f"a lifestyle counts as sedentary; {below} of those days were under {fmt(STEPS_THRESHOLD)}."
        ),
        action_steps=(
            f"Aim for {fmt(next_target)} steps a day this week, then add 500 a week until you "
            f"pass {fmt(STEPS_THRESHOLD)}.",
            "Take a 10-minute walk after each main meal; three of them add about 3,000 steps.",
            "Use stairs instead of lifts and walk during phone calls.",
        ),
        evidence={
            "metric": "steps",
            "window_days": window,
            "days_with_data": len(days),
            "average": average,
            "threshold": STEPS_THRESHOLD,
            "days_below_threshold": below,
        },
        related_metric_type="steps",
        description="Regular walking lowers the risk of heart disease, diabetes and depression.",
        confidence=coverage_confidence(len(days), window),
        goal_links=frozenset({"step_count", "more_exercise", "steps", "exercise"}),
    )


# --- Sleep ---------------------------------------------------------------------------


def insufficient_sleep(features: UserFeatures) -> Recommendation | None:
    """Average nightly sleep under 7 h; says how many nights were under 6 h."""
    nights = finite(features.metric_values("sleep"))
    if len(nights) < MIN_DAYS:
        return None
    average = rnd(mean(nights), 2)
    if average >= SLEEP_THRESHOLD_H:
        return None
    short = sum(1 for hours in nights if hours < SHORT_NIGHT_H)
    if average < 5:
        severity = HIGH
    elif average < SHORT_NIGHT_H or short * 2 >= len(nights):
        severity = MEDIUM
    else:
        severity = LOW
    window = features.window_days
    return Recommendation(
        code="insufficient_sleep",
        title="Get more sleep",
        category="sleep",
        severity=severity,
        reasoning=(
            f"You slept {fmt_hours(average)} a night on average over {plural(len(nights), 'night')} "
            f"logged in the last {plural(window, 'day')}, less than the {fmt_hours(SLEEP_THRESHOLD_H)} "
            f"adults need; {short} of those nights were under {fmt_hours(SHORT_NIGHT_H)}."
        ),
        action_steps=(
            "Pick a bedtime that leaves 7-8 hours before your usual wake-up time, and keep it on "
            "weekends too.",
            "No caffeine after 2 pm and no screens in the last 30 minutes before bed.",
            "Keep the bedroom dark, quiet and cool (around 18 °C).",
        ),
        evidence={
            "metric": "sleep",
            "window_days": window,
            "days_with_data": len(nights),
            "average": average,
            "threshold": SLEEP_THRESHOLD_H,
            "nights_under_6h": short,
            "short_night_threshold": SHORT_NIGHT_H,
            "unit": "h",
        },
        related_metric_type="sleep",
        description="Too little sleep raises blood pressure, appetite and the risk of accidents.",
        confidence=coverage_confidence(len(nights), window),
        goal_links=frozenset({"better_sleep", "stress_reduction", "sleep"}),
    )


# --- Heart ---------------------------------------------------------------------------


def elevated_resting_heart_rate(features: UserFeatures) -> Recommendation | None:
    """Average resting heart rate over 85 bpm, or a rise of 10 % or more in the recent
    days over the person's own baseline (the earlier part of the window)."""
    days = [(day, value.value) for day, value in features.metric_days("resting_heart_rate")]
    days = [(day, bpm) for day, bpm in days if math.isfinite(bpm)]
    if len(days) < MIN_DAYS:
        return None
    window = features.window_days
    average = rnd(mean([bpm for _, bpm in days]), 1)
    high = average > RESTING_HR_THRESHOLD

    recent_length = RECENT_DAYS if window >= 2 * RECENT_DAYS else window // 2
    recent_start = features.today - datetime.timedelta(days=recent_length - 1)
    recent = [bpm for day, bpm in days if day >= recent_start] if recent_length else []
    baseline = [bpm for day, bpm in days if day < recent_start] if recent_length else []
    rise_percent = baseline_average = recent_average = None
    if len(recent) >= MIN_DAYS and len(baseline) >= MIN_DAYS:
        baseline_mean, recent_mean = mean(baseline), mean(recent)
        change = ratio(recent_mean - baseline_mean, baseline_mean)
        if change is not None:
            rise_percent = rnd(change * 100, 1)
            baseline_average, recent_average = rnd(baseline_mean, 1), rnd(recent_mean, 1)
    rising = rise_percent is not None and rise_percent >= RESTING_HR_RISE_PERCENT
    if not high and not rising:
        return None

    sentences, severities = [], []
    if high:
        severities.append(HIGH if average > 100 else MEDIUM if average > 90 else LOW)
        sentences.append(
            f"Your resting heart rate averaged {fmt(average, 1)} bpm over {plural(len(days), 'day')} "
            f"in the last {plural(window, 'day')}, above the {fmt(RESTING_HR_THRESHOLD)} bpm we look for."
        )
    if rising:
        severities.append(MEDIUM if rise_percent >= 2 * RESTING_HR_RISE_PERCENT else LOW)
        subject = "it" if high else "your resting heart rate"
        sentences.append(
            f"Over the last {plural(recent_length, 'day')} {subject} averaged {fmt(recent_average, 1)} bpm, "
            f"{fmt(rise_percent, 1)} % above your own baseline of {fmt(baseline_average, 1)} bpm "
            f"earlier in the window."
        )
    steps = [
        "Build up to 150 minutes a week of moderate exercise such as brisk walking or cycling; "
        "fitness lowers the resting rate over weeks.",
        "Check what pushes it up: poor sleep, stress, alcohol, caffeine and dehydration all do.",
    ]
    if rising:
        steps.append(
            "A sudden rise can come with an infection, overtraining or stress; take rest days and "
            "watch for fever."
        )
    steps.append(
        "See a doctor if it stays above 100 bpm at rest or comes with dizziness, chest pain or "
        "breathlessness."
    )
    return Recommendation(
        code="elevated_resting_heart_rate",
        title="Your resting heart rate is high" if high else "Your resting heart rate is rising",
        category="heart",
        severity=_worst(*severities),
        reasoning=" ".join(sentences),
        action_steps=tuple(steps),
        evidence={
            "metric": "resting_heart_rate",
            "window_days": window,
            "days_with_data": len(days),
            "average": average,
            "threshold": RESTING_HR_THRESHOLD,
            "baseline_average": baseline_average,
            "baseline_days": len(baseline),
            "recent_average": recent_average,
            "recent_days": len(recent),
            "rise_percent": rise_percent,
            "rise_threshold_percent": RESTING_HR_RISE_PERCENT,
            "unit": "bpm",
        },
        related_metric_type="resting_heart_rate",
        description="A high or climbing resting heart rate is linked to lower fitness and higher "
        "cardiovascular risk.",
        confidence=coverage_confidence(len(days), window),
        goal_links=frozenset({"more_exercise", "stress_reduction", "resting_heart_rate", "heart_rate"}),
    )


# --- Weight --------------------------------------------------------------------------


def _weight_goal(features: UserFeatures, latest_kg: float) -> tuple[GoalFact, int] | None:
    """The highest-priority active weight goal not yet reached, and its direction (-1
    lose, +1 gain)."""
    ranked = sorted(
        (goal for goal in features.goals if goal_metric(goal) == "weight"),
        key=lambda goal: (-SEVERITY_ORDER.get(goal.priority, 0), goal.id),
    )
    for goal in ranked:
        direction = _goal_direction(goal, fallback_start=latest_kg)
        if direction and (goal.target_value - latest_kg) * direction > 0:
            return goal, direction
    return None


def weight_management(features: UserFeatures) -> Recommendation | None:
    """Weight trend (least-squares slope per week) against an active weight goal, and
    BMI outside 18.5-25 when height is known."""
    days = [(day, value.value) for day, value in features.metric_days("weight")]
    days = [(day, kg) for day, kg in days if math.isfinite(kg) and kg > 0]
    if len(days) < MIN_DAYS:
        return None
    window = features.window_days
    unit = features.profile.weight_unit
    latest = days[-1][1]

    bmi = None
    height = features.profile.height_cm
    if height and MIN_HEIGHT_CM <= height <= MAX_HEIGHT_CM:
        bmi = rnd(latest / (height / 100) ** 2, 1)
    else:
        height = None
    slope_week = None
    if (days[-1][0] - days[0][0]).days >= WEIGHT_TREND_MIN_SPAN_DAYS:
        slope = slope_per_day(days)
        slope_week = rnd(slope * 7, 2) if slope is not None else None

    findings: list[tuple[str, str, str]] = []  # (severity, title, sentence)
    goal_evidence: dict[str, Any] = {}
    weight_goal = _weight_goal(features, latest)
    too_fast = False
    if weight_goal and slope_week is not None:
        goal, direction = weight_goal
        goal_evidence = {
            "goal_id": goal.id,
            "goal_direction": "lose" if direction < 0 else "gain",
            "goal_target_kg": rnd(goal.target_value, 1),
        }
        toward = slope_week * direction
        if slope_week == 0:
            trend = "your weight has stayed flat"
        else:
            trend = (
                f"your weight has gone {'down' if slope_week < 0 else 'up'} "
                f"{fmt_weight(abs(slope_week), unit, 2)} a week"
            )
        if toward <= 0:
            findings.append(
                (
                    MEDIUM,
                    "Your weight is not moving toward your goal",
                    f"Your goal is to {'lose' if direction < 0 else 'gain'} weight (target "
                    f"{fmt_weight(goal.target_value, unit)}), but over {plural(len(days), 'weigh-in')} "
                    f"in the last {plural(window, 'day')} {trend}.",
                )
            )
        elif abs(slope_week) > SAFE_WEIGHT_CHANGE_KG_WEEK:
            too_fast = True
            findings.append(
                (
                    MEDIUM,
                    "Your weight is changing faster than is safe",
                    f"You are {'losing' if direction < 0 else 'gaining'} "
                    f"{fmt_weight(abs(slope_week), unit, 2)} a week over {plural(len(days), 'weigh-in')}, "
                    f"faster than the {fmt_weight(SAFE_WEIGHT_CHANGE_KG_WEEK, unit)} a week that is "
                    f"generally safe.",
                )
            )
    if bmi is not None and bmi < BMI_LOW:
        findings.append(
            (
                HIGH if bmi < 17 else MEDIUM,
                "Your BMI is below the healthy range",
                f"Your latest weight, {fmt_weight(latest, unit)}, at {fmt(height)} cm gives a BMI of "
                f"{fmt(bmi, 1)}, under the healthy range of {fmt(BMI_LOW, 1)}-{fmt(BMI_HIGH, 0)}.",
            )
        )
    elif bmi is not None and bmi >= BMI_HIGH:
        findings.append(
            (
                HIGH if bmi >= 35 else MEDIUM if bmi >= 30 else LOW,
                "Your BMI is above the healthy range",
                f"Your latest weight, {fmt_weight(latest, unit)}, at {fmt(height)} cm gives a BMI of "
                f"{fmt(bmi, 1)}, above the healthy range of {fmt(BMI_LOW, 1)}-{fmt(BMI_HIGH, 0)}.",
            )
        )
    if not findings:
        return None

    findings.sort(key=lambda finding: -SEVERITY_ORDER[finding[0]])
    underweight = bmi is not None and bmi < BMI_LOW
    wants_gain = bool(weight_goal and weight_goal[1] > 0)
    if too_fast and not wants_gain:
        steps = [
            "Slow down to 0.5-1 kg (1-2 lb) a week: add about 250 kcal a day, mostly protein.",
            "Keep strength training so the weight you lose is fat, not muscle.",
            "If you are losing weight faster than you are trying to, see a doctor.",
        ]
    elif underweight or wants_gain:
        steps = [
            "Add an extra snack or meal each day with protein and healthy fats (nuts, yoghurt, eggs).",
            "Pair it with strength training twice a week so the gain is muscle.",
            "If you are losing weight without trying, see a doctor.",
        ]
    else:
        steps = [
            "Aim for a steady 0.25-0.5 kg (0.5-1 lb) a week: about 250-500 kcal a day less than now.",
            "Fill half your plate with vegetables and cut sugary drinks and snacks.",
            "Weigh yourself at the same time of day, once or twice a week, to follow the trend.",
        ]
    return Recommendation(
        code="weight_management",
        title=findings[0][1],
        category="weight",
        severity=_worst(*(finding[0] for finding in findings)),
        reasoning=" ".join(finding[2] for finding in findings),
        action_steps=tuple(steps),
        evidence={
            "metric": "weight",
            "window_days": window,
            "days_with_data": len(days),
            "latest": rnd(latest, 1),
            "unit": "kg",
            "height_cm": height,
            "bmi": bmi,
            "bmi_range": [BMI_LOW, BMI_HIGH],
            "trend_kg_per_week": slope_week,
            **goal_evidence,
        },
        related_metric_type="weight",
        description="Keeping weight in a healthy range lowers the risk of diabetes, heart disease "
        "and joint problems.",
        confidence=coverage_confidence(len(days), window),
        goal_links=frozenset({"weight_loss", "weight_gain", "weight"}),
    )


# --- Nutrition -----------------------------------------------------------------------


def mifflin_st_jeor_bmr(*, weight_kg: float, height_cm: float, age_years: int, sex: str) -> float:
    """Resting energy need in kcal/day (Mifflin-St Jeor, 1990)."""
    base = 10 * weight_kg + 6.25 * height_cm - 5 * age_years
    return base + (5 if sex == "male" else -161)


def activity_factor(average_steps: float | None) -> float:
    """Multiplier from resting to daily need, from the person's steps when known."""
    if average_steps is None:
        return DEFAULT_ACTIVITY_FACTOR
    if average_steps < 5_000:
        return 1.2
    if average_steps < 7_500:
        return 1.375
    if average_steps < 10_000:
        return 1.55
    return 1.725


def _latest_weight(features: UserFeatures) -> float | None:
    days = [value.value for _, value in features.metric_days("weight")]
    days = [kg for kg in days if math.isfinite(kg) and kg > 0]
    return days[-1] if days else None


def energy_need(features: UserFeatures) -> tuple[int, float] | None:
    """``(kcal per day, activity factor)`` when age, sex, height and weight are known."""
    profile = features.profile
    weight = _latest_weight(features)
    if not (profile.age_years and profile.sex in ("male", "female") and profile.height_cm and weight):
        return None
    if not (
        ADULT_AGE <= profile.age_years <= 120
        and MIN_HEIGHT_CM <= profile.height_cm <= MAX_HEIGHT_CM
        and WEIGHT_RANGE.min_value <= weight <= WEIGHT_RANGE.max_value
    ):
        return None  # the equation is for adults, and implausible facts are bad data
    bmr = mifflin_st_jeor_bmr(
        weight_kg=weight, height_cm=profile.height_cm, age_years=profile.age_years, sex=profile.sex
    )
    steps = finite(features.metric_values("steps"))
    factor = activity_factor(mean(steps) if len(steps) >= MIN_DAYS else None)
    need = rnd(bmr * factor)
    return (need, factor) if need > 0 else None


def _macro_percent(days, grams_of, kcal_per_gram: float) -> tuple[float, int] | None:
    """Share of energy from one macronutrient over the days that logged it."""
    used = [(grams_of(totals), totals.energy_kcal) for totals in days]
    used = [(grams, kcal) for grams, kcal in used if grams is not None and kcal]
    if len(used) < MIN_DAYS:
        return None
    share = ratio(math.fsum(g for g, _ in used) * kcal_per_gram, math.fsum(k for _, k in used))
    return (rnd(share * 100, 1), len(used)) if share is not None else None


def poor_nutrition(features: UserFeatures) -> Recommendation | None:
    """Average calories more than 25 % from the estimated need (Mifflin-St Jeor when age,
    sex, height and weight are known), protein under 10 % of energy, or fat over 35 %."""
    days = [totals for _, totals in features.nutrition_days()]
    eating_days = [totals for totals in days if totals.energy_kcal]
    if len(eating_days) < MIN_DAYS:
        return None
    window = features.window_days
    average = rnd(mean([totals.energy_kcal for totals in eating_days]))
    need = energy_need(features)
    protein = _macro_percent(eating_days, lambda t: t.protein_g, KCAL_PER_G_PROTEIN)
    fat = _macro_percent(eating_days, lambda t: t.fat_g, KCAL_PER_G_FAT)

    findings: list[tuple[str, str]] = []
    calorie_ratio = None
    if need:
        calorie_ratio = rnd(average / need[0], 2)
        off_by = abs(calorie_ratio - 1)
        if off_by > CALORIE_BAND:
            direction = "below" if calorie_ratio < 1 else "above"
            findings.append(
                (
                    HIGH if off_by > CALORIE_EXTREME_BAND else MEDIUM,
                    f"You ate {fmt(average)} kcal a day on average over {plural(len(eating_days), 'day')} "
                    f"with meals logged, {fmt(abs(calorie_ratio - 1) * 100)} % {direction} the "
                    f"{fmt(need[0])} kcal your body needs (estimated from your age, sex, height, weight "
                    f"and activity).",
                )
            )
    if protein and protein[0] < PROTEIN_MIN_PERCENT:
        findings.append(
            (
                LOW,
                f"Protein gave only {fmt(protein[0], 1)} % of your energy, under the "
                f"{fmt(PROTEIN_MIN_PERCENT)} % minimum.",
            )
        )
    if fat and fat[0] > FAT_MAX_PERCENT:
        findings.append(
            (
                LOW,
                f"Fat gave {fmt(fat[0], 1)} % of your energy, over the {fmt(FAT_MAX_PERCENT)} % maximum.",
            )
        )
    if not findings:
        return None
    severity = _worst(*(finding[0] for finding in findings))
    if severity == LOW and len(findings) > 1:
        severity = MEDIUM
    reasoning = " ".join(finding[1] for finding in findings)
    if not need or findings[0][1].startswith(("Protein", "Fat")):
        reasoning = (
            f"Over {plural(len(eating_days), 'day')} with meals logged in the last "
            f"{plural(window, 'day')} you ate {fmt(average)} kcal a day on average. " + reasoning
        )
    steps = []
    if calorie_ratio is not None and calorie_ratio < 1 - CALORIE_BAND:
        steps.append("Eat three regular meals; add a snack with protein if you often skip one.")
    if calorie_ratio is not None and calorie_ratio > 1 + CALORIE_BAND:
        steps.append("Use smaller plates, skip second helpings and swap sugary drinks for water.")
    if protein and protein[0] < PROTEIN_MIN_PERCENT:
        steps.append("Add a palm-sized portion of protein to each meal: fish, eggs, beans, tofu, yoghurt.")
    if fat and fat[0] > FAT_MAX_PERCENT:
        steps.append("Cut fried food, pastries and fatty meat; cook with a little olive oil, not butter.")
    steps.append("Fill half your plate with vegetables or fruit.")
    return Recommendation(
        code="poor_nutrition",
        title="Rebalance what you eat",
        category="nutrition",
        severity=severity,
        reasoning=reasoning,
        action_steps=tuple(steps),
        evidence={
            "metric": "nutrition",
            "window_days": window,
            "days_with_data": len(eating_days),
            "average_calories": average,
            "estimated_need": need[0] if need else None,
            "need_method": "mifflin_st_jeor" if need else None,
            "activity_factor": need[1] if need else None,
            "calorie_ratio": calorie_ratio,
            "calorie_tolerance_percent": rnd(CALORIE_BAND * 100),
            "protein_percent": protein[0] if protein else None,
            "protein_min_percent": PROTEIN_MIN_PERCENT,
            "fat_percent": fat[0] if fat else None,
            "fat_max_percent": FAT_MAX_PERCENT,
        },
        related_metric_type="",
        description="Eating about what your body needs, with enough protein and not too much fat, "
        "supports weight, energy and heart health.",
        confidence=coverage_confidence(len(eating_days), window),
        goal_links=frozenset({"better_nutrition", "weight_loss", "weight_gain"}),
    )


def low_water_intake(features: UserFeatures) -> Recommendation | None:
    """Average daily water under 2,000 ml over the days water was logged."""
    days = finite(totals.water_ml for _, totals in features.nutrition_days())
    if len(days) < MIN_DAYS:
        return None
    average = rnd(mean(days))
    if average >= WATER_THRESHOLD_ML:
        return None
    window = features.window_days
    glasses = max(1, math.ceil((WATER_THRESHOLD_ML - average) / 250))
    return Recommendation(
        code="low_water_intake",
        title="Drink more water",
        category="hydration",
        severity=MEDIUM if average < 1_000 else LOW,
        reasoning=(
            f"You logged {fmt(average)} ml of water a day on average over {plural(len(days), 'day')} "
            f"in the last {plural(window, 'day')}, under the {fmt(WATER_THRESHOLD_ML)} ml a day most "
            f"adults need."
        ),
        action_steps=(
            f"Drink {plural(glasses, 'more glass', 'more glasses')} (250 ml each) a day: one with "
            f"every meal and one mid-morning and mid-afternoon.",
            "Keep a bottle on your desk or in your bag and refill it twice a day.",
            "Drink a glass more when you exercise or it is hot.",
        ),
        evidence={
            "metric": "water",
            "window_days": window,
            "days_with_data": len(days),
            "average": average,
            "threshold": WATER_THRESHOLD_ML,
            "unit": "ml",
        },
        related_metric_type="",
        description="Too little water leads to tiredness, headaches and kidney stones.",
        confidence=coverage_confidence(len(days), window),
        goal_links=frozenset({"hydration", "water"}),
    )


# --- Blood pressure and glucose ------------------------------------------------------


def elevated_blood_pressure(features: UserFeatures) -> Recommendation | None:
    """Average of 130/80 or more over at least 3 days; any reading of 180/120 or more is
    high severity on its own."""
    days = features.metric_days("blood_pressure")
    window = features.window_days
    crisis_days = [
        day
        for day, value in days
        if (value.maximum or value.value) >= BP_CRISIS_SYSTOLIC
        or (value.secondary_max or value.secondary or 0) >= BP_CRISIS_DIASTOLIC
    ]
    systolic = finite(value.value for _, value in days)
    diastolic = finite(value.secondary for _, value in days)
    average_systolic = rnd(mean(systolic)) if len(systolic) >= MIN_DAYS else None
    average_diastolic = rnd(mean(diastolic)) if len(diastolic) >= MIN_DAYS else None
    elevated = (average_systolic is not None and average_systolic >= BP_SYSTOLIC) or (
        average_diastolic is not None and average_diastolic >= BP_DIASTOLIC
    )
    if not crisis_days and not elevated:
        return None
    highest_systolic = max(finite(value.maximum or value.value for _, value in days), default=None)
    highest_diastolic = max(finite(value.secondary_max or value.secondary for _, value in days), default=None)
    sentences = []
    if elevated:
        sentences.append(
            f"Your blood pressure averaged {fmt(average_systolic or 0)}/{fmt(average_diastolic or 0)} "
            f"mmHg over {plural(len(days), 'day')} in the last {plural(window, 'day')}, at or above "
            f"the {BP_SYSTOLIC}/{BP_DIASTOLIC} mmHg of high blood pressure."
        )
    if crisis_days:
        sentences.append(
            f"On {plural(len(crisis_days), 'day')} a reading reached {fmt(highest_systolic or 0)}/"
            f"{fmt(highest_diastolic or 0)} mmHg, in the {BP_CRISIS_SYSTOLIC}/{BP_CRISIS_DIASTOLIC} "
            f"mmHg crisis range."
        )
        severity = HIGH
        steps = (
            "Sit quietly for 5 minutes and measure again; if it is still 180/120 or higher, call "
            "your doctor today.",
            "With chest pain, shortness of breath, weakness, vision or speech problems, call "
            "emergency services now.",
            "Keep measuring twice a day and bring the readings to your doctor.",
        )
        confidence = 1.0  # the reading itself is the evidence
    else:
        stage_two = (average_systolic or 0) >= BP_STAGE2_SYSTOLIC or (
            average_diastolic or 0
        ) >= BP_STAGE2_DIASTOLIC
        severity = MEDIUM if stage_two else LOW
        steps = (
            "Cut salt to under 5 g a day: less processed food, bread and cheese, no salt at the table.",
            "Be active 150 minutes a week and keep alcohol to a minimum.",
            "Measure at the same time each day, seated and rested, and show the readings to your doctor.",
        )
        confidence = coverage_confidence(len(days), window)
    return Recommendation(
        code="elevated_blood_pressure",
        title="A blood pressure reading was dangerously high"
        if crisis_days
        else "Your blood pressure is high",
        category="blood_pressure",
        severity=severity,
        reasoning=" ".join(sentences),
        action_steps=steps,
        evidence={
            "metric": "blood_pressure",
            "window_days": window,
            "days_with_data": len(days),
            "average_systolic": average_systolic,
            "average_diastolic": average_diastolic,
            "threshold_systolic": BP_SYSTOLIC,
            "threshold_diastolic": BP_DIASTOLIC,
            "highest_systolic": rnd(highest_systolic) if highest_systolic is not None else None,
            "highest_diastolic": rnd(highest_diastolic) if highest_diastolic is not None else None,
            "crisis_days": len(crisis_days),
            "crisis_threshold_systolic": BP_CRISIS_SYSTOLIC,
            "crisis_threshold_diastolic": BP_CRISIS_DIASTOLIC,
            "unit": "mmHg",
        },
        related_metric_type="blood_pressure",
        description="High blood pressure rarely causes symptoms but damages the heart, brain and kidneys.",
        confidence=confidence,
        goal_links=frozenset({"stress_reduction", "blood_pressure"}),
    )


def elevated_blood_glucose(features: UserFeatures) -> Recommendation | None:
    """Fasting-range glucose of 100 mg/dL or more. The lowest reading of each day stands
    in for the fasting value (samples carry no meal context)."""
    days = [value.minimum if value.minimum is not None else value.value for _, value in
            features.metric_days("blood_glucose")]  # fmt: skip
    days = finite(days)
    if len(days) < MIN_DAYS:
        return None
    average = rnd(mean(days))
    if average < GLUCOSE_FASTING_THRESHOLD:
        return None
    window = features.window_days
    diabetic_range = average >= GLUCOSE_DIABETES_THRESHOLD
    range_text = (
        f"at or above the {GLUCOSE_DIABETES_THRESHOLD} mg/dL that suggests diabetes"
        if diabetic_range
        else f"in the {GLUCOSE_FASTING_THRESHOLD}-{GLUCOSE_DIABETES_THRESHOLD - 1} mg/dL prediabetes range"
    )
    return Recommendation(
        code="elevated_blood_glucose",
        title="Your fasting blood sugar is high",
        category="glucose",
        severity=HIGH if diabetic_range else MEDIUM,
        reasoning=(
            f"Your lowest glucose reading of the day, the closest to a fasting value, averaged "
            f"{fmt(average)} mg/dL over {plural(len(days), 'day')} in the last {plural(window, 'day')}, "
            f"{range_text}."
        ),
        action_steps=(
            "Ask your doctor for a fasting glucose or HbA1c test to confirm it.",
            "Swap sugary drinks, white bread and sweets for whole grains, vegetables and legumes.",
            "Walk for 10-15 minutes after meals; it lowers the rise in blood sugar.",
        ),
        evidence={
            "metric": "blood_glucose",
            "window_days": window,
            "days_with_data": len(days),
            "average_daily_lowest": average,
            "threshold": GLUCOSE_FASTING_THRESHOLD,
            "diabetes_threshold": GLUCOSE_DIABETES_THRESHOLD,
            "unit": "mg/dL",
        },
        related_metric_type="blood_glucose",
        description="Raised fasting glucose is an early sign of diabetes, which lifestyle changes "
        "can often prevent.",
        confidence=coverage_confidence(len(days), window),
        goal_links=frozenset({"better_nutrition", "blood_glucose"}),
    )


# --- Goals ---------------------------------------------------------------------------


def goal_metric(goal: GoalFact) -> str:
    """The series a goal follows: its metric type, else the one its type implies."""
    return goal.metric_type or GOAL_TYPE_METRIC.get(goal.goal_type, "")


def goal_series(features: UserFeatures, metric: str) -> list[tuple[datetime.date, float]]:
    """Daily values of what a goal follows (``water`` comes from nutrition logs)."""
    if metric == "water":
        points = [(day, totals.water_ml) for day, totals in features.nutrition_days()]
    else:
        points = [(day, value.value) for day, value in features.metric_days(metric)]
    return [(day, value) for day, value in points if value is not None and math.isfinite(value)]


def _goal_direction(goal: GoalFact, *, fallback_start: float | None) -> int:
    """+1 when the goal is reached by going up, -1 by going down, 0 when unclear.

    The goal's type decides for weight; then its own start value; then the usual way
    of its type (more steps, sleep, exercise, water); then where the data started.
    """
    if goal.goal_type == "weight_loss":
        return -1
    if goal.goal_type == "weight_gain":
        return 1
    if goal.start_value is not None and goal.start_value != goal.target_value:
        return 1 if goal.target_value > goal.start_value else -1
    if goal.goal_type in _UPWARD_GOAL_TYPES:
        return 1
    if fallback_start is None or fallback_start == goal.target_value:
        return 0
    return 1 if goal.target_value > fallback_start else -1


def _current_goal_value(metric: str, series: list[tuple[datetime.date, float]]) -> float:
    """Where the person is now: the latest weight, else the mean of the last 7 days of data."""
    if metric == "weight":
        return series[-1][1]
    last_day = series[-1][0]
    recent = [value for day, value in series if (last_day - day).days < 7]
    return mean(recent) or 0.0


def _assess_goal(features: UserFeatures, goal: GoalFact) -> dict[str, Any] | None:
    """Evidence of an off-track goal, or None when it is on track or cannot be judged."""
    metric = goal_metric(goal)
    if not metric or goal.target_date is None:
        return None
    series = goal_series(features, metric)
    if goal.created_on is not None:
        # The pace since the goal was set; a goal younger than a week is not judged yet.
        series = [(day, value) for day, value in series if day >= goal.created_on]
    if len(series) < MIN_DAYS or (series[-1][0] - series[0][0]).days < GOAL_TREND_MIN_SPAN_DAYS:
        return None
    direction = _goal_direction(goal, fallback_start=series[0][1])
    if not direction:
        return None
    current = _current_goal_value(metric, series)
    remaining = (goal.target_value - current) * direction
    if remaining <= 0:
        return None  # reached
    slope = slope_per_day(series) or 0.0
    speed = slope * direction  # units per day toward the target
    today = features.today
    projected = None
    if speed > 0:
        days_needed = math.ceil(remaining / speed)
        if days_needed <= GOAL_HORIZON_DAYS:
            projected = today + datetime.timedelta(days=days_needed)
    if goal.target_date < today:
        status = "overdue"
    elif speed <= 0:
        status = "not_progressing"
    elif projected is None or projected > goal.target_date:
        status = "behind_schedule"
    else:
        return None
    places = 2 if metric in ("sleep", "weight") else 0
    return {
        "goal_id": goal.id,
        "goal_type": goal.goal_type,
        "priority": goal.priority,
        "metric": metric,
        "window_days": features.window_days,
        "days_with_data": len(series),
        "start_value": rnd(goal.start_value, places) if goal.start_value is not None else None,
        "current_value": rnd(current, places),
        "target_value": rnd(goal.target_value, places),
        "target_date": goal.target_date.isoformat(),
        "trend_per_week": rnd(slope * 7, places),
        "projected_completion": projected.isoformat() if projected else None,
        "status": status,
    }


def _long_date(day: datetime.date) -> str:
    return f"{day.day} {day:%B %Y}"


def _goal_value_text(metric: str, value: float, unit: str) -> str:
    if metric == "weight":
        return fmt_weight(value, unit)
    if metric == "sleep":
        return fmt_hours(value)
    suffix = {"steps": "steps", "water": "ml", "exercise": "min"}.get(metric, "")
    return f"{fmt(value, 0 if metric in ('steps', 'water', 'exercise') else 1)} {suffix}".strip()


def goal_off_track(features: UserFeatures) -> Recommendation | None:
    """An active goal whose projected completion (from the data's trend) falls after its
    target date, that is not moving toward its target, or that is overdue. Reports the
    most important such goal and lists the others."""
    assessed = [
        (goal, evidence) for goal in features.goals if (evidence := _assess_goal(features, goal)) is not None
    ]
    if not assessed:
        return None
    status_weight = {"overdue": 3, "not_progressing": 2, "behind_schedule": 1}
    assessed.sort(
        key=lambda item: (
            -SEVERITY_ORDER.get(item[0].priority, 0),
            -status_weight[item[1]["status"]],
            item[0].target_date,
            item[0].id,
        )
    )
    goal, evidence = assessed[0]
    metric = evidence["metric"]
    unit = features.profile.weight_unit
    name = f"“{goal.title}”" if goal.title else f"your {goal.goal_type.replace('_', ' ')} goal"
    target_text = _goal_value_text(metric, goal.target_value, unit)
    current_text = _goal_value_text(metric, evidence["current_value"], unit)
    target_date = _long_date(goal.target_date)
    if evidence["status"] == "overdue":
        sentence = (
            f"The target date of {name} ({target_text} by {target_date}) has passed, and you are at "
            f"{current_text}."
        )
    elif evidence["status"] == "not_progressing":
        sentence = (
            f"{name[0].upper()}{name[1:]} aims for {target_text} by {target_date}, but over "
            f"{plural(evidence['days_with_data'], 'day')} of data you are at {current_text} and the "
            f"trend is not moving toward the target."
        )
    else:
        when = (
            f"around {_long_date(datetime.date.fromisoformat(evidence['projected_completion']))}"
            if evidence["projected_completion"]
            else "not within ten years"
        )
        sentence = (
            f"At your current pace (now {current_text}) you would reach {name}'s target of "
            f"{target_text} {when}, after its target date of {target_date}."
        )
    others = [item[0].id for item in assessed[1:]]
    if others:
        verb = "is" if len(others) == 1 else "are"
        sentence += f" {plural(len(others), 'other goal')} {verb} off track too."
    severity = LOW if evidence["status"] == "behind_schedule" else MEDIUM
    return Recommendation(
        code="goal_off_track",
        title="A goal is off track",
        category="goals",
        severity=severity,
        reasoning=sentence,
        action_steps=(
            "Break the goal into a weekly target you can check every Sunday.",
            "Pick one habit that moves it most and schedule it in your calendar.",
            "If the date is no longer realistic, move it: a goal you keep beats one you drop.",
        ),
        evidence={**evidence, "off_track_goal_ids": [goal.id, *others]},
        related_metric_type=metric if metric != "water" else "",
        description="Goals with a realistic pace are the ones people reach.",
        confidence=coverage_confidence(evidence["days_with_data"], features.window_days),
        goal_links=frozenset({f"goal:{goal.id}"}),
    )


# --- Tracking ------------------------------------------------------------------------


def missing_data(features: UserFeatures) -> Recommendation | None:
    """Advice to log what is missing (no data in the window) or too sparse for the other
    rules (under 3 days): the basics, and whatever the person's goals follow."""
    items = list(TRACKED_ITEMS)
    for goal in features.goals:
        metric = goal_metric(goal)
        if metric and metric not in items:
            items.append(metric)
    counts = {item: features.days_with_any(item) for item in items}
    missing = [item for item in items if counts[item] == 0]
    sparse = [item for item in items if 0 < counts[item] < MIN_DAYS]
    if not missing and not sparse:
        return None
    window = features.window_days
    sentences = []
    if len(missing) == len(items):
        sentences.append(
            f"Nothing has been logged in the last {plural(window, 'day')}, so there is nothing to assess yet."
        )
    elif missing:
        sentences.append(
            f"No {_join([_item_label(i) for i in missing])} logged in the last {plural(window, 'day')}."
        )
    if sparse:
        parts = [f"{_item_label(i)} on {plural(counts[i], 'day')}" for i in sparse]
        sentences.append(f"Only {_join(parts)}.")
    sentences.append(f"With at least {MIN_DAYS} days of each we can tell you how you are doing.")
    steps = [
        _TRACKING_STEPS.get(item, f"Log your {_item_label(item)} regularly.") for item in missing + sparse
    ]
    related = next(
        (item for item in missing + sparse if item not in ("meals", "water")),
        "",
    )
    return Recommendation(
        code="missing_data",
        title="Start tracking to get personal advice"
        if len(missing) == len(items)
        else f"Log your {_join([_item_label(i) for i in (missing + sparse)[:3]])}",
        category="tracking",
        severity=LOW,
        reasoning=" ".join(sentences),
        action_steps=tuple(steps[:5]),
        evidence={
            "window_days": window,
            "missing": missing,
            "sparse": sparse,
            "days_with_data": {item: counts[item] for item in items},
            "min_days": MIN_DAYS,
        },
        related_metric_type=related,
        description="Advice is only as good as the data behind it.",
        confidence=TRACKING_CONFIDENCE,
        goal_links=frozenset(missing + sparse),
    )


Rule = Callable[[UserFeatures], Recommendation | None]

RULES: tuple[Rule, ...] = (
    low_steps,
    insufficient_sleep,
    elevated_resting_heart_rate,
    weight_management,
    poor_nutrition,
    low_water_intake,
    elevated_blood_pressure,
    elevated_blood_glucose,
    goal_off_track,
    missing_data,
)
