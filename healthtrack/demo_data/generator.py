"""Synthetic people and their days, deterministic for a seed. Pure Python, no ORM.

Every person gets two independent random streams, ``Random(f"{seed}:{key}:profile")``
and ``Random(f"{seed}:{key}:series")`` (string seeds are hashed with SHA-512, so they do
not depend on ``PYTHONHASHSEED``), where ``key`` is ``p<index>`` for the N-th demo person
and ``u<id>`` for an existing account given demo data. The same seed, anchor date and
day count therefore always give the same people, values and instants, whatever order
or process generates them.

Times: each day is the person's local day in their time zone; a sample's instant is
local midnight (UTC epoch seconds) plus seconds into the day. Sleep is recorded when
the person wakes, so a night counts on the day it ends (``metrics.registry``).

Output rows are plain tuples (the fastest thing to build 10 million of):

- metric: ``(metric_type, value, secondary_value, unit, epoch_seconds)``
- nutrition: ``(meal_type, description, calories, protein_g, carbs_g, fat_g, water_ml,
  epoch_seconds)``
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from statistics import fmean
from zoneinfo import ZoneInfo

from healthtrack.demo_data.personas import FIRST_NAMES, LAST_NAMES, MEALS, PERSONAS, TIMEZONES, Persona
from metrics.registry import METRIC_TYPES

DEMO_EMAIL_DOMAIN = "demo.healthtrack.invalid"
DEMO_USERNAME_PREFIX = "demo-"
# Appended to the description of every seeded goal: how --reset finds the goals it
# gave to existing accounts (goals carry no source field).
DEMO_GOAL_MARKER = "(demo data)"

_HOUR = 3600
_MINUTE = 60
_LAST_SECOND = 86_399

_UNIT = {code: metric_type.canonical_unit for code, metric_type in METRIC_TYPES.items()}


@dataclass(frozen=True)
class PersonSpec:
    """Who a demo person is: account and profile facts, and their persona."""

    key: str
    persona: Persona
    username: str
    email: str
    first_name: str
    last_name: str
    gender: str
    body: str  # "female" | "male" | "other": picks heights and names
    date_of_birth: date | None
    height_cm: float
    timezone: str
    occupation: str
    medical_history: str | None
    date_joined: datetime


@dataclass
class PersonData:
    metrics: list[tuple] = field(default_factory=list)
    nutrition: list[tuple] = field(default_factory=list)
    goals: list[dict] = field(default_factory=list)


def persona_for_index(index: int) -> Persona:
    """Round robin, so any 7 consecutive people cover every persona."""
    return PERSONAS[index % len(PERSONAS)]


def _weighted_timezone(rng: random.Random) -> str:
    names = [name for name, _ in TIMEZONES]
    weights = [weight for _, weight in TIMEZONES]
    return rng.choices(names, weights=weights)[0]


def _height_for(rng: random.Random, body: str) -> float:
    mean, spread = {"female": (164.0, 6.5), "male": (177.5, 7.0)}.get(body, (170.0, 8.0))
    return round(min(205.0, max(145.0, rng.gauss(mean, spread))), 1)


def person_spec(*, seed: int, index: int, anchor: date, days: int) -> PersonSpec:
    """The ``index``-th demo person (0-based) for ``seed``."""
    rng = random.Random(f"{seed}:p{index}:profile")  # noqa: S311 - synthetic data, not secrets
    persona = persona_for_index(index)
    roll = rng.random()
    if roll < 0.49:
        gender, body = "female", "female"
    elif roll < 0.97:
        gender, body = "male", "male"
    elif roll < 0.99:
        gender, body = "non_binary", "other"
    else:
        gender, body = "prefer_not_to_say", "other"
    age_years = rng.randint(*persona.ages)
    birth = anchor - timedelta(days=age_years * 365 + rng.randint(0, 364))
    history = rng.choice(persona.medical_history) if persona.medical_history else None
    joined_days_before = days + rng.randint(0, 400)
    joined = datetime(anchor.year, anchor.month, anchor.day, tzinfo=UTC) - timedelta(
        days=joined_days_before, seconds=rng.randint(0, 86_399)
    )
    username = f"{DEMO_USERNAME_PREFIX}{index + 1:05d}"
    return PersonSpec(
        key=f"p{index}",
        persona=persona,
        username=username,
        email=f"{username}@{DEMO_EMAIL_DOMAIN}",
        first_name=rng.choice(FIRST_NAMES[body]),
        last_name=rng.choice(LAST_NAMES),
        gender=gender,
        body=body,
        date_of_birth=birth,
        height_cm=_height_for(rng, body),
        timezone=_weighted_timezone(rng),
        occupation=rng.choice(persona.occupations),
        medical_history=history,
        date_joined=joined,
    )


def included_person_spec(
    *,
    user_id: int,
    persona: Persona,
    username: str,
    email: str,
    first_name: str,
    last_name: str,
    gender: str,
    height_cm: float | None,
    timezone: str,
    date_joined: datetime,
) -> PersonSpec:
    """An existing account: its own profile facts, with ``persona``'s habits."""
    body = gender if gender in ("female", "male") else "other"
    return PersonSpec(
        key=f"u{user_id}",
        persona=persona,
        username=username,
        email=email,
        first_name=first_name,
        last_name=last_name,
        gender=gender,
        body=body,
        date_of_birth=None,
        height_cm=height_cm or {"female": 164.0, "male": 177.5}.get(body, 170.0),
        timezone=timezone or "UTC",
        occupation="",
        medical_history=None,
        date_joined=date_joined,
    )


def _local_midnights(timezone: str, first_day: date, days: int) -> list[int]:
    zone = ZoneInfo(timezone)
    return [
        int(datetime.combine(first_day + timedelta(days=offset), datetime.min.time(), zone).timestamp())
        for offset in range(days)
    ]


def _clamp(value: float, low: float, high: float) -> float:
    return low if value < low else high if value > high else value


def _mean_or_none(values: list[float]) -> float | None:
    return round(fmean(values), 1) if values else None


def person_data(*, seed: int, spec: PersonSpec, anchor: date, days: int) -> PersonData:
    """Every metric sample, meal, drink and goal of ``spec`` over the ``days`` local
    days ending with ``anchor``."""
    rng = random.Random(f"{seed}:{spec.key}:series")  # noqa: S311 - synthetic data, not secrets
    gauss, rand, uniform, randint = rng.gauss, rng.random, rng.uniform, rng.randint
    p = spec.persona
    first_day = anchor - timedelta(days=days - 1)
    # One more midnight than days: each day's length (23 or 25 hours when clocks change).
    midnights = _local_midnights(spec.timezone, first_day, days + 1)

    # This person's own baseline around the persona's.
    steps_base = max(1200.0, gauss(p.steps[0], p.steps[1]))
    sleep_base = _clamp(gauss(p.sleep_hours[0], 0.35), 3.5, 9.5)
    rhr_base = _clamp(gauss(p.resting_hr, 3.5), 42, 95)
    height_m = spec.height_cm / 100
    weight_start = _clamp(gauss(p.bmi[0], p.bmi[1]), 17.5, 45) * height_m * height_m
    size_factor = (weight_start / 75) ** 0.5 * {"male": 1.1, "female": 0.9}.get(spec.body, 1.0)
    calories_base = p.calories * size_factor * gauss(1.0, 0.06)
    water_base = max(600.0, gauss(p.water_ml, 250))
    wake_base = {True: 8.0, False: 6.6}
    exercise_probability = p.exercise_days_per_week / 7
    exercise_morning = p.code == "runner" and rand() < 0.5
    systolic_base = diastolic_base = 0.0
    if p.blood_pressure:
        systolic_base = gauss(p.blood_pressure[0], 6)
        diastolic_base = gauss(p.blood_pressure[1], 4)
    fasting_base = gauss(p.fasting_glucose, 5) if p.fasting_glucose else 0.0
    protein_share, carbs_share, fat_share = p.macro_shares
    weigh_probability = 0.95 if p.weight_trend_kg_per_day < 0 else 0.82

    metrics: list[tuple] = []
    nutrition: list[tuple] = []
    add_metric, add_meal = metrics.append, nutrition.append
    daily_steps: list[int] = []
    nightly_sleep: list[float] = []
    daily_exercise: list[int] = []
    resting: list[int] = []
    systolic_readings: list[tuple[int, int]] = []  # (day, systolic)
    fasting_readings: list[tuple[int, int]] = []
    weights: list[float] = []
    u_bpm, u_count, u_h, u_kg = _UNIT["heart_rate"], _UNIT["steps"], _UNIT["sleep"], _UNIT["weight"]
    u_min, u_mmhg, u_glucose = _UNIT["exercise"], _UNIT["blood_pressure"], _UNIT["blood_glucose"]
    u_spo2, u_temp = _UNIT["oxygen_saturation"], _UNIT["body_temperature"]

    for day_index, midnight in enumerate(midnights[:-1]):
        # Everything happens by bedtime, and bedtime is inside the local day.
        latest_bed = min(86_000, midnights[day_index + 1] - midnight - 600)
        weekday = (first_day + timedelta(days=day_index)).weekday()
        weekend = weekday >= 5

        # Night ending this morning.
        if p.code == "poor_sleeper" and rand() < 0.3:
            sleep = gauss(sleep_base - 1.4, 0.8)  # a bad night
        else:
            sleep = gauss(sleep_base + (0.6 if weekend else 0.0), p.sleep_hours[1] * 0.6)
        sleep = round(_clamp(sleep, 2.5, 11.0), 2)
        wake = int((wake_base[weekend] + gauss(0, 0.4)) * _HOUR)
        if p.code == "poor_sleeper":
            wake += int(uniform(-1.0, 1.5) * _HOUR)
        wake = int(_clamp(wake, 4 * _HOUR, 11 * _HOUR))
        bed = int(
            _clamp(wake + (24 - sleep_base - 0.4 + gauss(0, 0.5)) * _HOUR, wake + 10 * _HOUR, latest_bed)
        )
        add_metric(("sleep", sleep, None, u_h, midnight + wake))
        nightly_sleep.append(sleep)

        rhr = round(_clamp(rhr_base + max(0.0, 7 - sleep) * 1.5 + gauss(0, 1.8), 38, 110))
        add_metric(("resting_heart_rate", float(rhr), None, u_bpm, midnight + wake + 5 * _MINUTE))
        resting.append(rhr)

        if rand() < weigh_probability:
            weight = weight_start + p.weight_trend_kg_per_day * day_index + gauss(0, 0.3)
            weight = round(_clamp(weight, 30, 250), 1)
            add_metric(("weight", weight, None, u_kg, midnight + wake + 10 * _MINUTE))
            weights.append(weight)

        # Exercise: morning for some runners, after work for everyone else.
        exercise_minutes = 0
        exercise_start = exercise_end = -1
        if rand() < exercise_probability:
            exercise_minutes = randint(*p.exercise_minutes)
            if exercise_morning:
                exercise_start = wake + randint(20, 50) * _MINUTE
            else:
                exercise_start = int(uniform(17.5, 19.0) * _HOUR)
            exercise_end = min(exercise_start + exercise_minutes * _MINUTE, bed - _MINUTE)
            add_metric(("exercise", float(exercise_minutes), None, u_min, midnight + exercise_end))
        daily_exercise.append(exercise_minutes)

        # Heart rate through the waking day; high during exercise.
        t = wake + randint(10, 30) * _MINUTE
        exercise_low, exercise_high = p.exercise_hr
        while t < bed:
            if exercise_start <= t <= exercise_end:
                bpm = randint(exercise_low, exercise_high)
            else:
                bpm = round(_clamp(rhr + 14 + gauss(0, 7), rhr, 150))
            add_metric(("heart_rate", float(bpm), None, u_bpm, midnight + t))
            t += randint(90, 150) * _MINUTE  # about every two hours
        if exercise_minutes:
            mid_exercise = (exercise_start + exercise_end) // 2
            add_metric(("heart_rate", float(randint(exercise_low, exercise_high)), None, u_bpm,
                        midnight + mid_exercise))  # fmt: skip

        # Steps in a few chunks, each recorded when it ends.
        factor = p.weekend_steps_factor if weekend else 1.0
        total_steps = int(_clamp(gauss(steps_base * factor, steps_base * 0.22), 250, 45_000))
        chunks = randint(4, 6)
        span = bed - wake - 60 * _MINUTE
        weights_raw = [rand() + 0.2 for _ in range(chunks)]
        scale = total_steps / sum(weights_raw)
        ends = sorted(wake + 30 * _MINUTE + int(rand() * span) for _ in range(chunks))
        counted = 0
        for chunk_index in range(chunks):
            if chunk_index == chunks - 1:
                chunk_steps = total_steps - counted
            else:
                chunk_steps = int(weights_raw[chunk_index] * scale)
                counted += chunk_steps
            add_metric(("steps", float(chunk_steps), None, u_count, midnight + ends[chunk_index]))
        if exercise_minutes and p.code == "runner":
            run_steps = exercise_minutes * randint(150, 170)
            add_metric(("steps", float(run_steps), None, u_count, midnight + exercise_end))
            total_steps += run_steps
        daily_steps.append(total_steps)

        # Meals and water.
        lunch = int(uniform(12.0, 13.75) * _HOUR)
        day_calories = calories_base * gauss(1.0, 0.1)
        shares = {"breakfast": 0.23, "lunch": 0.33, "dinner": 0.34}
        meal_times = {
            "breakfast": wake + randint(25, 75) * _MINUTE,
            "lunch": lunch,
            "dinner": int(_clamp(uniform(18.5, 20.75) * _HOUR, lunch + 4 * _HOUR, bed - 30 * _MINUTE)),
        }
        if rand() < p.breakfast_skip_probability:
            del shares["breakfast"]
        if rand() < p.snack_probability:
            shares["snack"] = 0.1
            meal_times["snack"] = int(uniform(15.0, 16.5) * _HOUR)
        total_share = sum(shares.values())
        for meal_type, share in shares.items():
            kcal = day_calories * share / total_share * gauss(1.0, 0.08)
            add_meal((
                meal_type, MEALS[meal_type][randint(0, len(MEALS[meal_type]) - 1)],
                float(round(kcal)), round(kcal * protein_share / 4, 1), round(kcal * carbs_share / 4, 1),
                round(kcal * fat_share / 9, 1), None, midnight + meal_times[meal_type],
            ))  # fmt: skip
        water = round(_clamp(water_base * gauss(1.0, 0.15), 300, 5000) / 50) * 50
        if rand() < 0.3:
            first = round(water * uniform(0.35, 0.6) / 50) * 50
            add_meal(("water", "Water", None, None, None, None, float(first),
                      midnight + int(uniform(10.0, 14.0) * _HOUR)))  # fmt: skip
            water -= first
        add_meal(("water", "Water", None, None, None, None, float(water),
                  midnight + int(_clamp(uniform(20.0, 21.5) * _HOUR, wake + _HOUR, bed))))  # fmt: skip

        # Condition-specific readings.
        if p.blood_pressure:
            for when, offset, probability in (
                (wake + 30 * _MINUTE, 0.0, 0.9),
                (bed - 45 * _MINUTE, -3.0, 0.7),
            ):
                if rand() < probability:
                    systolic = round(_clamp(systolic_base + offset + gauss(0, 7), 95, 220))
                    diastolic = round(_clamp(diastolic_base + gauss(0, 5), 55, systolic - 25))
                    add_metric(("blood_pressure", float(systolic), float(diastolic), u_mmhg, midnight + when))
                    systolic_readings.append((day_index, systolic))
        if p.fasting_glucose:
            if rand() < 0.9:
                fasting = round(_clamp(gauss(fasting_base, 6), 70, 180))
                add_metric(("blood_glucose", float(fasting), None, u_glucose, midnight + wake + 20 * _MINUTE))
                fasting_readings.append((day_index, fasting))
            if rand() < 0.7:
                after_lunch = round(_clamp(gauss(fasting_base + 42, 15), 90, 300))
                add_metric(
                    ("blood_glucose", float(after_lunch), None, u_glucose, midnight + lunch + 2 * _HOUR)
                )
            if rand() < 0.4:
                evening = round(_clamp(gauss(fasting_base + 15, 10), 80, 260))
                add_metric(("blood_glucose", float(evening), None, u_glucose, midnight + bed - 30 * _MINUTE))
        if p.low_night_spo2 and rand() < 0.5:
            spo2 = round(_clamp(gauss(94.0, 1.5), 86.0, 99.5), 1)
            add_metric(("oxygen_saturation", spo2, None, u_spo2, midnight + wake + 2 * _MINUTE))
        elif rand() < 0.12:
            spo2 = round(_clamp(gauss(97.6, 0.8), 93.0, 100.0), 1)
            add_metric(("oxygen_saturation", spo2, None, u_spo2, midnight + randint(wake, bed)))
        if rand() < 0.05:
            fever = rand() < 0.15
            celsius = uniform(38.0, 39.2) if fever else _clamp(gauss(36.7, 0.25), 35.8, 37.5)
            add_metric(("body_temperature", round(celsius, 1), None, u_temp, midnight + randint(wake, bed)))

    stats = _Stats(
        steps=daily_steps, sleep=nightly_sleep, exercise=daily_exercise, resting=resting,
        weights=weights, systolic=systolic_readings, fasting=fasting_readings,
    )  # fmt: skip
    goals = _goals(rng, spec, anchor, stats, calories_base, water_base, weight_start)
    return PersonData(metrics=metrics, nutrition=nutrition, goals=goals)


@dataclass
class _Stats:
    steps: list[int]
    sleep: list[float]
    exercise: list[int]
    resting: list[int]
    weights: list[float]
    systolic: list[tuple[int, int]]
    fasting: list[tuple[int, int]]

    @staticmethod
    def first_week(values: list) -> list:
        return values[:7]

    @staticmethod
    def last_week(values: list) -> list:
        return values[-7:]

    def readings(self, readings: list[tuple[int, int]], first: bool) -> list[int]:
        days = len(self.steps)
        if first:
            return [value for day, value in readings if day < 7]
        return [value for day, value in readings if day >= days - 7]


def _goal(
    *,
    goal_type: str,
    title: str,
    description: str,
    target: float,
    unit: str,
    metric_type: str = "",
    start: float | None = None,
    current: float | None = None,
    priority: str = "medium",
    target_date: date | None = None,
) -> dict:
    return {
        "goal_type": goal_type,
        "title": title,
        "description": f"{description} {DEMO_GOAL_MARKER}",
        "metric_type": metric_type,
        "start_value": start,
        "current_value": current,
        "target_value": float(target),
        "unit": unit,
        "priority": priority,
        "status": "active",
        "target_date": target_date,
    }


def _goals(rng, spec, anchor, stats: _Stats, calories_base, water_base, weight_start) -> list[dict]:
    """Goals that fit the persona. With a metric link, ``start_value`` is the first
    week's figure and ``current_value`` the last week's: the mean per day (steps,
    sleep, resting heart rate, systolic pressure, fasting glucose), the week's total
    (exercise minutes) or the latest reading (weight)."""
    code = spec.persona.code
    target_date = anchor + timedelta(days=rng.randint(45, 180))
    first, last = _Stats.first_week, _Stats.last_week
    steps = {
        "metric_type": "steps",
        "unit": "count",
        "start": _mean_or_none(first(stats.steps)),
        "current": _mean_or_none(last(stats.steps)),
    }
    exercise = {
        "metric_type": "exercise",
        "unit": "min",
        "start": float(sum(first(stats.exercise))),
        "current": float(sum(last(stats.exercise))),
    }
    if code == "healthy_baseline":
        return [
            _goal(goal_type="step_count", title="Walk 10,000 steps a day", target=10_000,
                  description="Keep up an active routine.", target_date=target_date, **steps),
            _goal(goal_type="hydration", title="Drink 2.5 litres of water a day", target=2500, unit="ml",
                  description="Water with every meal and a bottle at the desk.", priority="low"),
        ]  # fmt: skip
    if code == "sedentary_office_worker":
        return [
            _goal(goal_type="step_count", title="Walk 7,000 steps a day", target=7000, priority="high",
                  description="Walk at lunch and take the stairs.", target_date=target_date, **steps),
            _goal(goal_type="more_exercise", title="150 minutes of exercise a week", target=150,
                  description="The WHO minimum for adults.", **exercise),
        ]  # fmt: skip
    if code == "runner":
        return [
            _goal(goal_type="more_exercise", title="Run 250 minutes a week", target=250, priority="high",
                  description="Build up to a half marathon.", target_date=target_date, **exercise),
            _goal(goal_type="custom", title="Resting heart rate at 50 bpm", target=50, unit="bpm",
                  metric_type="resting_heart_rate", start=_mean_or_none(first(stats.resting)),
                  current=_mean_or_none(last(stats.resting)), priority="low",
                  description="Aerobic base training."),
        ]  # fmt: skip
    if code == "poor_sleeper":
        return [
            _goal(goal_type="better_sleep", title="Sleep 7 hours a night", target=7, unit="h",
                  metric_type="sleep", start=_mean_or_none(first(stats.sleep)),
                  current=_mean_or_none(last(stats.sleep)), priority="high",
                  description="A fixed wake-up time, no screens in bed.", target_date=target_date),
            _goal(goal_type="stress_reduction", title="Wind down for 30 minutes before bed", target=5,
                  unit="nights", description="Five nights a week without screens after 22:00."),
        ]  # fmt: skip
    if code == "hypertensive":
        return [
            _goal(goal_type="custom", title="Systolic blood pressure under 130 mmHg", target=130,
                  unit="mmHg", metric_type="blood_pressure",
                  start=_mean_or_none(stats.readings(stats.systolic, first=True)),
                  current=_mean_or_none(stats.readings(stats.systolic, first=False)), priority="high",
                  description="Less salt, daily walks, medication as prescribed.", target_date=target_date),
            _goal(goal_type="step_count", title="Walk 6,000 steps a day", target=6000,
                  description="A brisk walk after dinner.", **steps),
        ]  # fmt: skip
    if code == "pre_diabetic":
        latest = stats.weights[-1] if stats.weights else round(weight_start, 1)
        return [
            _goal(goal_type="custom", title="Fasting glucose under 100 mg/dL", target=100, unit="mg/dL",
                  metric_type="blood_glucose", start=_mean_or_none(stats.readings(stats.fasting, first=True)),
                  current=_mean_or_none(stats.readings(stats.fasting, first=False)), priority="high",
                  description="Fewer refined carbohydrates, more fibre.", target_date=target_date),
            _goal(goal_type="weight_loss", title="Lose 5 % of body weight", metric_type="weight", unit="kg",
                  target=round(weight_start * 0.95, 1), start=round(weight_start, 1), current=latest,
                  description="Recommended for preventing type 2 diabetes."),
        ]  # fmt: skip
    # weight_loss
    start = stats.weights[0] if stats.weights else round(weight_start, 1)
    latest = stats.weights[-1] if stats.weights else start
    return [
        _goal(goal_type="weight_loss", title="Lose 8 kg", metric_type="weight", unit="kg",
              target=round(start - 8, 1), start=start, current=latest, priority="high",
              description="About half a kilo a week.", target_date=target_date),
        _goal(goal_type="better_nutrition", title="Keep to 1,800 kcal a day", target=1800, unit="kcal",
              description="Plan meals ahead, fewer snacks."),
    ]  # fmt: skip


# --- Rendering for PostgreSQL COPY (text format) ----------------------------------------

_TIME_OF_DAY: list[str] | None = None
_UTC_DATES: dict[int, str] = {}


def _time_of_day() -> list[str]:
    global _TIME_OF_DAY
    if _TIME_OF_DAY is None:
        _TIME_OF_DAY = [
            f"{second // 3600:02d}:{second % 3600 // 60:02d}:{second % 60:02d}+00" for second in range(86_400)
        ]
    return _TIME_OF_DAY


def _utc_text(epoch: int, time_of_day: list[str]) -> str:
    day, second = divmod(epoch, 86_400)
    prefix = _UTC_DATES.get(day)
    if prefix is None:
        prefix = _UTC_DATES[day] = (date(1970, 1, 1) + timedelta(days=day)).isoformat() + " "
    return prefix + time_of_day[second]


def _copy_value(value) -> str:
    return "\\N" if value is None else repr(value)


def metric_copy_lines(user_id: int, rows: list[tuple], created: str) -> str:
    """Rows for ``COPY metrics_healthmetric (user_id, metric_type, value,
    secondary_value, unit, recorded_at, source, external_id, notes, created_at)``."""
    tod = _time_of_day()
    suffix = f"\tdemo\t\\N\t\t{created}\n"
    cv = _copy_value
    return "".join(
        f"{user_id}\t{metric_type}\t{value!r}\t{cv(secondary)}\t{unit}\t{_utc_text(epoch, tod)}{suffix}"
        for metric_type, value, secondary, unit, epoch in rows
    )


def nutrition_copy_lines(user_id: int, rows: list[tuple], created: str) -> str:
    """Rows for ``COPY nutrition_nutritionlog (user_id, meal_type, description, calories,
    protein_g, carbs_g, fat_g, water_ml, logged_at, source, external_id, created_at)``."""
    tod = _time_of_day()
    suffix = f"\tdemo\t\\N\t{created}\n"
    cv = _copy_value
    return "".join(
        f"{user_id}\t{meal_type}\t{description}\t{cv(calories)}\t{cv(protein)}\t{cv(carbs)}\t{cv(fat)}"
        f"\t{cv(water)}\t{_utc_text(epoch, tod)}{suffix}"
        for meal_type, description, calories, protein, carbs, fat, water, epoch in rows
    )


# --- Units of work (picklable; run in worker processes with --jobs > 1) -------------------


@dataclass(frozen=True)
class Chunk:
    seed: int
    anchor: date
    days: int
    people: tuple[tuple[int, PersonSpec], ...]
    created: datetime
    as_copy_text: bool


@dataclass
class ChunkOutput:
    people: int
    metric_rows: int
    nutrition_rows: int
    metric_text: str = ""
    nutrition_text: str = ""
    metrics: list[tuple[int, tuple]] = field(default_factory=list)
    nutrition: list[tuple[int, tuple]] = field(default_factory=list)
    goals: list[tuple[int, dict]] = field(default_factory=list)


def generate_chunk(chunk: Chunk) -> ChunkOutput:
    """Pure: runs in a worker process when --jobs > 1, so it touches no database."""
    created_text = chunk.created.strftime("%Y-%m-%d %H:%M:%S.%f+00")
    output = ChunkOutput(people=len(chunk.people), metric_rows=0, nutrition_rows=0)
    metric_parts, nutrition_parts = [], []
    for user_id, spec in chunk.people:
        data = person_data(seed=chunk.seed, spec=spec, anchor=chunk.anchor, days=chunk.days)
        output.metric_rows += len(data.metrics)
        output.nutrition_rows += len(data.nutrition)
        if chunk.as_copy_text:
            metric_parts.append(metric_copy_lines(user_id, data.metrics, created_text))
            nutrition_parts.append(nutrition_copy_lines(user_id, data.nutrition, created_text))
        else:
            output.metrics.extend((user_id, row) for row in data.metrics)
            output.nutrition.extend((user_id, row) for row in data.nutrition)
        output.goals.extend((user_id, goal) for goal in data.goals)
    output.metric_text = "".join(metric_parts)
    output.nutrition_text = "".join(nutrition_parts)
    return output
