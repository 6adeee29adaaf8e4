#!/usr/bin/env python
"""Benchmark ``compute_insights``: seed N people x D days of data, run it, print the figures.

    make bench-insights                          # SQLite file var/bench_insights.sqlite3
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ht_insights_bench make bench-insights
    .venv/bin/python scripts/bench_insights.py --users 2000 --reseed --profile

The data set (``seed_benchmark_dataset``) is about ten metric samples and four nutrition
logs per person-day, in a dozen time zones, with realistic values and a share of people
tripping each rule. It is seeded once and reused by later runs with the same size
(``--reseed`` forces a fresh one). Without ``DATABASE_URL`` it uses its own SQLite file,
never the development database; a PostgreSQL database named in ``DATABASE_URL`` is
created when missing. The database should be a dedicated one: reseeding empties the
metric, nutrition, goal and insight tables.
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
BENCH_PREFIX = "bench-"
TIME_ZONES = (
    "UTC", "Europe/London", "Europe/Berlin", "Europe/Helsinki", "America/New_York", "America/Chicago",
    "America/Los_Angeles", "America/Sao_Paulo", "Asia/Tokyo", "Asia/Kolkata", "Australia/Sydney",
    "Pacific/Auckland",
)  # fmt: skip
# Share of people with each trait (independently), so every rule fires for some.
TRAITS = {
    "sedentary": 0.12,
    "short_sleeper": 0.12,
    "high_resting_hr": 0.06,
    "rising_resting_hr": 0.06,
    "heavy": 0.15,
    "gaining_on_loss_goal": 0.08,
    "fatty_diet": 0.10,
    "low_protein": 0.06,
    "overeater": 0.06,
    "low_water": 0.12,
    "hypertensive": 0.08,
    "crisis_reading": 0.01,
    "high_glucose": 0.05,
    "step_goal_off_track": 0.08,
    "no_sleep_tracking": 0.05,
    "no_data": 0.02,
}


def _setup_django(database_url: str | None) -> None:
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = (
            database_url or f"sqlite:///{BASE_DIR / 'var' / 'bench_insights.sqlite3'}"
        )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthtrack.settings")
    sys.path.insert(0, str(BASE_DIR))
    _create_postgres_database_if_missing(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.conf import settings

    settings.DEBUG = False  # no query log in memory: measure what production runs


def _create_postgres_database_if_missing(url: str) -> None:
    if not url.startswith(("postgres://", "postgresql://")):
        return
    import environ
    import psycopg
    from psycopg import sql

    config = environ.Env.db_url_config(url)
    params = {"host": config["HOST"], "port": config["PORT"] or 5432, "user": config["USER"]}
    if config.get("PASSWORD"):
        params["password"] = config["PASSWORD"]
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]
        ).fetchone()
        if not exists:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(config["NAME"])))
            print(f"Created database {config['NAME']}.")


# --- The data set ---------------------------------------------------------------------


def _metric_rows(rng: random.Random, user_id: int, traits: set[str], person: dict, days: int, now):
    """About ten samples a day: steps in four chunks, two heart rates, a resting heart
    rate, a night of sleep, a weight, and a blood pressure, glucose or exercise sample."""
    steps_mean = 2_600 if "sedentary" in traits else rng.uniform(6_500, 11_000)
    sleep_mean = 5.6 if "short_sleeper" in traits else rng.uniform(6.9, 8.2)
    rhr_base = 91 if "high_resting_hr" in traits else rng.uniform(55, 72)
    weight = person["weight"]
    weight_trend = 0.04 if "gaining_on_loss_goal" in traits else rng.uniform(-0.02, 0.02)
    bp = (142, 91) if "hypertensive" in traits else (rng.uniform(108, 124), rng.uniform(68, 78))
    glucose_fasting = 116 if "high_glucose" in traits else rng.uniform(78, 95)
    for day_back in range(days, -1, -1):
        midnight = (now - datetime.timedelta(days=day_back)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )

        def at(hour: float, _midnight=midnight):
            return _midnight + datetime.timedelta(hours=hour)

        total_steps = max(0.0, rng.gauss(steps_mean, steps_mean * 0.25))
        for chunk, hour in enumerate((9.5, 13.0, 17.5, 21.0)):
            yield ("steps", round(total_steps * (0.15, 0.3, 0.35, 0.2)[chunk]), None, "count", at(hour))
        yield ("heart_rate", round(rng.gauss(78, 9)), None, "bpm", at(11.0))
        yield ("heart_rate", round(rng.gauss(84, 10)), None, "bpm", at(18.0))
        rhr = rhr_base * (1.16 if "rising_resting_hr" in traits and day_back < 7 else 1.0)
        yield ("resting_heart_rate", round(rng.gauss(rhr, 2)), None, "bpm", at(7.0))
        if "no_sleep_tracking" not in traits:
            yield ("sleep", round(max(2.0, rng.gauss(sleep_mean, 0.6)), 2), None, "h", at(7.2))
        weight += weight_trend + rng.gauss(0, 0.15)
        yield ("weight", round(weight, 1), None, "kg", at(7.4))
        kind = day_back % 3
        if kind == 0 or "hypertensive" in traits:
            systolic, diastolic = rng.gauss(bp[0], 5), rng.gauss(bp[1], 4)
            if "crisis_reading" in traits and day_back == 3:
                systolic, diastolic = 186, 112
            yield ("blood_pressure", round(systolic), round(min(diastolic, systolic - 20)), "mmHg", at(8.0))
        elif kind == 1:
            yield ("blood_glucose", round(rng.gauss(glucose_fasting, 5)), None, "mg/dL", at(7.6))
        else:
            yield ("exercise", round(rng.uniform(10, 60)), None, "min", at(18.5))


def _nutrition_rows(rng: random.Random, traits: set[str], days: int, now):
    """Breakfast, lunch and dinner with macros, and the day's water."""
    calories = rng.uniform(1_700, 2_500) * (1.7 if "overeater" in traits else 1.0)
    fat_share = 0.45 if "fatty_diet" in traits else rng.uniform(0.25, 0.33)
    protein_share = 0.07 if "low_protein" in traits else rng.uniform(0.14, 0.22)
    water = 1_000 if "low_water" in traits else rng.uniform(1_900, 2_800)
    for day_back in range(days, 0, -1):
        midnight = (now - datetime.timedelta(days=day_back)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        day_calories = max(300.0, rng.gauss(calories, calories * 0.12))
        for meal, share, hour in (("breakfast", 0.25, 8), ("lunch", 0.35, 13), ("dinner", 0.4, 19)):
            kcal = day_calories * share
            protein = kcal * protein_share / 4
            fat = kcal * fat_share / 9
            carbs = max(0.0, (kcal - protein * 4 - fat * 9) / 4)
            yield (meal, round(kcal), round(protein, 1), round(carbs, 1), round(fat, 1), None,
                   midnight + datetime.timedelta(hours=hour))  # fmt: skip
        yield ("water", None, None, None, None, round(max(0.0, rng.gauss(water, 250))),
               midnight + datetime.timedelta(hours=15))  # fmt: skip


def _goals(rng: random.Random, person: dict, now) -> list[dict]:
    """A weight-loss goal for some heavy people (and for those gaining), a step goal
    (often too ambitious for its date) for some."""
    goals = []
    traits = person["traits"]
    if "gaining_on_loss_goal" in traits or ("heavy" in traits and rng.random() < 0.5):
        goals.append(
            {
                "goal_type": "weight_loss",
                "title": "Lose weight",
                "metric_type": "weight",
                "start_value": round(person["weight"], 1),
                "target_value": round(person["weight"] * 0.9, 1),
                "unit": "kg",
                "priority": rng.choice(("low", "medium", "high")),
                "target_date": (now + datetime.timedelta(days=rng.randint(30, 180))).date(),
            }
        )
    if "step_goal_off_track" in traits or rng.random() < 0.1:
        goals.append(
            {
                "goal_type": "step_count",
                "title": "Walk more",
                "metric_type": "steps",
                "target_value": 12_000,
                "unit": "count",
                "priority": rng.choice(("medium", "high")),
                "target_date": (now + datetime.timedelta(days=rng.randint(7, 40))).date(),
            }
        )
    return goals


def seed_benchmark_dataset(*, users: int, days: int, seed: int = 42) -> dict[str, int]:
    """Seed ``users`` people with ``days`` days of data; returns row counts.

    The one place that knows the benchmark's data set, so it can be swapped for the
    project's ``seed_demo_data`` command once that exists. PostgreSQL takes the big
    tables through COPY; other databases through executemany.
    """
    from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX as UNUSABLE
    from django.db import connection, transaction

    from goals.models import HealthGoal
    from users.models import Profile, User

    rng = random.Random(seed)
    now = datetime.datetime.now(tz=datetime.UTC)
    people = []
    for index in range(users):
        traits = {trait for trait, share in TRAITS.items() if rng.random() < share}
        height = rng.uniform(150, 195)
        bmi = rng.uniform(30, 35) if "heavy" in traits else rng.uniform(19.5, 24.5)
        people.append(
            {
                "username": f"{BENCH_PREFIX}{index:06d}",
                "traits": traits,
                "height": round(height, 1),
                "weight": bmi * (height / 100) ** 2,
                "gender": rng.choice(("female", "male", "non_binary", "")),
                "born": datetime.date(rng.randint(1950, 2004), rng.randint(1, 12), rng.randint(1, 28)),
                "timezone": rng.choice(TIME_ZONES),
            }
        )

    with transaction.atomic():
        accounts = User.objects.bulk_create(
            [
                User(username=p["username"], email=f"{p['username']}@bench.example", password=UNUSABLE)
                for p in people
            ],
            batch_size=2_000,
        )
        for person, account in zip(people, accounts, strict=True):
            person["id"] = account.pk
        profiles = [
            Profile(user_id=p["id"], date_of_birth=p["born"], gender=p["gender"], height_cm=p["height"],
                    timezone=p["timezone"])
            for p in people
        ]  # fmt: skip
        Profile.objects.bulk_create(profiles, batch_size=2_000)
        goals = [HealthGoal(user_id=p["id"], **values) for p in people for values in _goals(rng, p, now)]
        HealthGoal.objects.bulk_create(goals, batch_size=2_000)
        # Set weeks ago, so their pace can be judged (created_at is auto_now_add).
        HealthGoal.objects.filter(pk__in=[goal.pk for goal in goals]).update(
            created_at=now - datetime.timedelta(days=days + 15)
        )

        metric_count = nutrition_count = 0
        metric_columns = (
            "user_id", "metric_type", "value", "secondary_value", "unit", "recorded_at", "source", "notes",
            "created_at",
        )  # fmt: skip
        nutrition_columns = (
            "user_id", "meal_type", "calories", "protein_g", "carbs_g", "fat_g", "water_ml", "logged_at",
            "description", "source", "created_at",
        )  # fmt: skip

        def metric_rows():
            nonlocal metric_count
            for p in people:
                if "no_data" in p["traits"]:
                    continue
                for row in _metric_rows(rng, p["id"], p["traits"], p, days, now):
                    if row[4] <= now:
                        metric_count += 1
                        yield (p["id"], *row, "demo", "", now)

        def nutrition_rows():
            nonlocal nutrition_count
            for p in people:
                if "no_data" in p["traits"]:
                    continue
                for row in _nutrition_rows(rng, p["traits"], days, now):
                    nutrition_count += 1
                    yield (p["id"], *row, "", "demo", now)

        _bulk_insert(connection, "metrics_healthmetric", metric_columns, metric_rows())
        _bulk_insert(connection, "nutrition_nutritionlog", nutrition_columns, nutrition_rows())
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return {"users": users, "goals": len(goals), "metrics": metric_count, "nutrition_logs": nutrition_count}


def _bulk_insert(connection, table: str, columns: tuple[str, ...], rows) -> None:
    column_list = ", ".join(columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({column_list}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        placeholders = ", ".join(["%s"] * len(columns))
        adapt = connection.ops.adapt_datetimefield_value
        chunk: list[tuple] = []
        for row in rows:
            chunk.append(
                tuple(adapt(value) if isinstance(value, datetime.datetime) else value for value in row)
            )
            if len(chunk) == 50_000:
                cursor.executemany(f"INSERT INTO {table} ({column_list}) VALUES ({placeholders})", chunk)  # noqa: S608
                chunk = []
        if chunk:
            cursor.executemany(f"INSERT INTO {table} ({column_list}) VALUES ({placeholders})", chunk)  # noqa: S608


def _wipe_benchmark_data() -> None:
    from django.db import connection, transaction

    from goals.models import HealthGoal
    from insights.models import HealthInsight
    from metrics.models import HealthMetric
    from nutrition.models import NutritionLog
    from users.models import User

    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                tables = ", ".join(
                    model._meta.db_table for model in (HealthMetric, NutritionLog, HealthGoal, HealthInsight)
                )
                cursor.execute(f"TRUNCATE {tables}")
        else:
            for model in (HealthMetric, NutritionLog, HealthGoal, HealthInsight):
                model.objects.all()._raw_delete(model.objects.db)
        User.objects.filter(username__startswith=BENCH_PREFIX).delete()


# --- The run -------------------------------------------------------------------------


class QueryCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def _run_compute(batch_size: int, *, profile: bool) -> tuple[float, int, str]:
    import io

    from django.core.management import call_command
    from django.db import connection

    counter = QueryCounter()
    out = io.StringIO()
    profiler = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler()
        profiler.start()
    started = time.perf_counter()
    with connection.execute_wrapper(counter):
        call_command("compute_insights", "--batch-size", str(batch_size), "--progress", "never", stdout=out)
    seconds = time.perf_counter() - started
    if profiler is not None:
        profiler.stop()
        report = BASE_DIR / "var" / "bench_insights_profile.html"
        report.write_text(profiler.output_html())
        print(profiler.output_text(unicode=False, color=False, show_all=False)[:6_000])
        print(f"Profile written to {report}")
    return seconds, counter.count, out.getvalue().strip()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--reseed", action="store_true", help="Seed a fresh data set even if one exists.")
    parser.add_argument("--profile", action="store_true", help="Profile the first run with pyinstrument.")
    parser.add_argument("--database-url", help="Default: DATABASE_URL, else var/bench_insights.sqlite3.")
    args = parser.parse_args()

    _setup_django(args.database_url)
    from django.core.management import call_command
    from django.db import connection

    from insights.models import HealthInsight
    from users.models import User

    call_command("migrate", verbosity=0)
    database = f"{connection.vendor} {connection.settings_dict['NAME']}"
    existing = User.objects.filter(username__startswith=BENCH_PREFIX).count()
    if args.reseed or existing != args.users:
        print(f"Seeding {args.users:,} people x {args.days} days into {database} ...")
        _wipe_benchmark_data()
        started = time.perf_counter()
        counts = seed_benchmark_dataset(users=args.users, days=args.days)
        print(
            f"Seeded {counts['metrics']:,} metrics, {counts['nutrition_logs']:,} nutrition logs and "
            f"{counts['goals']:,} goals in {time.perf_counter() - started:.1f} s."
        )
    else:
        print(f"Reusing the {existing:,} seeded people in {database} (--reseed for a fresh set).")
    HealthInsight.objects.all().delete()

    for label in ("first run (creates)", "second run (same data: no writes)"):
        seconds, queries, summary = _run_compute(
            args.batch_size, profile=args.profile and label.startswith("first")
        )
        users = User.objects.filter(is_active=True, is_staff=False).count()
        batches = -(-users // args.batch_size)
        print(
            f"compute_insights {label}: {users:,} users in {seconds:.1f} s = {users / seconds:,.0f} users/s; "
            f"{queries} queries for {batches} batch{'es' if batches != 1 else ''} of {args.batch_size}."
        )
        print(f"  {summary}")
    print(f"Insights stored: {HealthInsight.objects.count():,}")


if __name__ == "__main__":
    main()
