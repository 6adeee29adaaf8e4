#!/usr/bin/env python
"""Fuzz the live API with Schemathesis against its own OpenAPI schema.

    make fuzz                                   # what CI runs (.ci/run)
    .venv/bin/python scripts/fuzz_api.py --max-examples 50 --seed 7
    .venv/bin/python scripts/fuzz_api.py --include-path-regex 'health-goals' --phases fuzzing

What it does, start to end:

1. Creates a dedicated, empty database next to the one in ``DATABASE_URL`` (PostgreSQL:
   ``<name>_fuzz``, dropped and created again; without PostgreSQL: a temporary SQLite
   file), so the run can never touch the development or test database, and migrates it.
2. Seeds it (``seed_fuzz_dataset``): a fuzz person with 30 days of metrics, nutrition
   logs, goals, insights and a care team; a second person with their own data (ids the
   fuzz person must not reach); a clinician; and a pool of throwaway sessions for the
   operations that end a session (sign-out, password change, account deletion).
3. Serves the app with gunicorn (the repo's ``gunicorn.conf.py``, 2 workers, production
   settings, rate limits off) on a free port, on that database and ``REDIS_URL``
   (under a cache key prefix of its own).
4. Runs ``schemathesis run`` on ``/api/schema``: every operation, authenticated as the
   fuzz person (hooks in ``scripts/fuzz_hooks.py`` steer path ids towards the seeded
   rows), with the checks ``not_a_server_error``, ``response_schema_conformance``,
   ``status_code_conformance`` and ``ignored_auth``.
5. Exits with Schemathesis's status (non-zero on any failure). Failures are printed by
   Schemathesis with a ``curl`` line that reproduces each one, followed by the server's
   log (tracebacks of any 500), and the JUnit report is kept in ``--report-dir``.
   The database is dropped afterwards (``--keep-database`` keeps it for a post-mortem).

See docs/hardening.md for why the defaults (phases, examples) are what they are.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
BIN_DIR = Path(sys.executable).parent

CHECKS = ("not_a_server_error", "response_schema_conformance", "status_code_conformance", "ignored_auth")
DEFAULT_PHASES = "examples,coverage,fuzzing,stateful"
DEFAULT_MAX_EXAMPLES = 100
DEFAULT_SEED = 20250101
FUZZ_PREFIX = "fuzz-"
# Throwaway sessions for operations that end the session they run in; one is used per
# generated case of those operations (see scripts/fuzz_hooks.py).
DISPOSABLE_SESSIONS = 600
CONFIG_FILE = BASE_DIR / "scripts" / "fuzz_schemathesis.toml"
FUZZ_PASSWORD = "fuzz-Password-0123456789"  # noqa: S105 - a throwaway account on a throwaway database


# --- The data set ---------------------------------------------------------------------


def seed_fuzz_dataset(*, days: int = 30, disposable_sessions: int = DISPOSABLE_SESSIONS) -> dict:
    """Create the fuzz accounts and their data; return what the hooks need (ids, tokens).

    * ``fuzz-person``: 30 days of metrics and nutrition logs, goals, engine insights and a
      clinician's note, three clinicians on the care team. Its ids are the ones the
      fuzzer should find (200s on GET/PUT/PATCH; some are set aside for DELETE).
    * ``fuzz-other``: a second person with the same kinds of rows: ids that must answer
      404 to the fuzz person.
    * ``fuzz-clinician-N``: staff in the clinicians group.
    * ``disposable_sessions`` accounts with one session each, spent by the operations
      that end a session, so the fuzz person's own token stays valid for the whole run.
    """
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group
    from django.db import transaction
    from django.utils import timezone

    from goals.services import goal_create
    from insights.models import HealthInsight
    from insights.services import insight_create, insights_compute_batch
    from metrics.models import HealthMetric
    from metrics.registry import METRIC_TYPES
    from nutrition.models import NutritionLog
    from users.models import CLINICIANS_GROUP, CareTeamMembership, Profile, User
    from users.services import auth_tokens_issue, care_team_grant

    now = timezone.now()
    # One hash for every account: Argon2 is deliberately slow, and these are throwaways.
    password_hash = make_password(FUZZ_PASSWORD)

    def person(username: str, **fields) -> User:
        user = User.objects.create(
            username=username, email=f"{username}@fuzz.example", password=password_hash, **fields
        )
        Profile.objects.create(
            user=user,
            date_of_birth=datetime.date(1985, 6, 15),
            gender="female",
            height_cm=170.0,
            occupation="Tester",
            medical_history="Seasonal allergies.",
            timezone="Europe/Berlin",
        )
        return user

    def metrics_for(user: User) -> list[int]:
        rows = []
        for day_back in range(days, -1, -1):
            midnight = (now - datetime.timedelta(days=day_back)).replace(hour=0, minute=0, second=0)
            for metric_type, value, secondary, hour in (
                ("steps", 4_000 + 150 * (day_back % 9), None, 18),
                ("sleep", 6.2 + 0.1 * (day_back % 5), None, 7),
                ("resting_heart_rate", 70 + day_back % 6, None, 7.5),
                ("heart_rate", 82 + day_back % 11, None, 12),
                ("weight", 82.0 - 0.05 * (days - day_back), None, 7.2),
                ("blood_pressure", 124 + day_back % 7, 81 + day_back % 4, 8),
            ):
                recorded_at = midnight + datetime.timedelta(hours=hour)
                if recorded_at > now:
                    continue
                rows.append(
                    HealthMetric(
                        user=user,
                        metric_type=metric_type,
                        value=value,
                        secondary_value=secondary,
                        unit=METRIC_TYPES[metric_type].canonical_unit,
                        recorded_at=recorded_at,
                        source="manual",
                        notes="",
                    )
                )
        return [metric.pk for metric in HealthMetric.objects.bulk_create(rows)]

    def nutrition_for(user: User) -> list[int]:
        rows = []
        for day_back in range(days, 0, -1):
            midnight = (now - datetime.timedelta(days=day_back)).replace(hour=0, minute=0, second=0)
            for meal, calories, hour in (("breakfast", 450, 8), ("lunch", 700, 13), ("dinner", 900, 19)):
                rows.append(
                    NutritionLog(
                        user=user,
                        meal_type=meal,
                        description=f"{meal} {day_back}",
                        calories=calories,
                        protein_g=calories * 0.15 / 4,
                        carbs_g=calories * 0.5 / 4,
                        fat_g=calories * 0.35 / 9,
                        logged_at=midnight + datetime.timedelta(hours=hour),
                    )
                )
            rows.append(
                NutritionLog(
                    user=user,
                    meal_type="water",
                    water_ml=1_400,
                    logged_at=midnight + datetime.timedelta(hours=15),
                )
            )
        return [log.pk for log in NutritionLog.objects.bulk_create(rows)]

    def goals_for(user: User) -> list[int]:
        goals = [
            goal_create(
                user_id=user.pk, goal_type="weight_loss", title="Lose 5 kg", metric_type="weight",
                target_value=77.0, unit="kg", priority="high",
                target_date=(now + datetime.timedelta(days=90)).date(),
            ),
            goal_create(
                user_id=user.pk, goal_type="step_count", title="Walk 8,000 steps", metric_type="steps",
                target_value=8_000, unit="count",
            ),
        ]  # fmt: skip
        for index in range(6):
            goals.append(
                goal_create(
                    user_id=user.pk, goal_type="custom", title=f"Stretch {index + 1}", target_value=10,
                    start_value=0, current_value=index, unit="sessions",
                )
            )  # fmt: skip
        return [goal.pk for goal in goals]

    with transaction.atomic():
        clinicians_group, _ = Group.objects.get_or_create(name=CLINICIANS_GROUP)
        clinicians = []
        for index in range(4):
            clinician = person(f"{FUZZ_PREFIX}clinician-{index}", is_staff=True, first_name="Cleo")
            clinician.groups.add(clinicians_group)
            clinicians.append(clinician)
        fuzz = person(f"{FUZZ_PREFIX}person", first_name="Fuzz", last_name="Person")
        other = person(f"{FUZZ_PREFIX}other", first_name="Other", last_name="Person")

        state: dict = {"users": {}, "ids": {}}
        for role, user in (("self", fuzz), ("other", other)):
            memberships = [
                care_team_grant(patient=user, clinician_login=c.username)[0].pk for c in clinicians[:3]
            ]
            state["ids"][role] = {
                "metric": metrics_for(user),
                "nutrition_log": nutrition_for(user),
                "goal": goals_for(user),
                "membership": memberships,
            }
        insights_compute_batch(user_ids=[fuzz.pk, other.pk], days=days)
        for role, user in (("self", fuzz), ("other", other)):
            # Clinicians' notes stay put; the engine's may be replaced when the fuzzer's
            # writes change the day's recommendations, so most ids the hooks use are notes.
            for index in range(5):
                insight_create(
                    author=clinicians[0],
                    user_id=user.pk,
                    data={
                        "code": "clinician_note",
                        "title": f"Keep walking ({index + 1})",
                        "description": "Your steps are trending up.",
                        "severity": "low",
                        "action_steps": ["Walk after lunch."],
                        "evidence": {"week": index},
                    },
                )
            state["ids"][role]["insight"] = list(
                HealthInsight.objects.filter(user=user).order_by("pk").values_list("pk", flat=True)
            )
        # A membership on someone else's team the fuzz person must not revoke.
        state["ids"]["other"]["membership"].append(
            CareTeamMembership.objects.create(patient=other, clinician=clinicians[3]).pk
        )

        disposables = User.objects.bulk_create(
            [
                User(
                    username=f"{FUZZ_PREFIX}throwaway-{index}",
                    email=f"throwaway-{index}@fuzz.example",
                    password=password_hash,
                )
                for index in range(disposable_sessions)
            ]
        )
        Profile.objects.bulk_create([Profile(user=user, timezone="UTC") for user in disposables])

    for role, user in (("self", fuzz), ("other", other)):
        state["users"][role] = {"id": user.pk, "username": user.username, "email": user.email}
    state["users"]["clinicians"] = [{"id": c.pk, "username": c.username} for c in clinicians]
    state["password"] = FUZZ_PASSWORD
    state["token"] = auth_tokens_issue(user=fuzz)["access"]
    state["clinician_token"] = auth_tokens_issue(user=clinicians[0])["access"]
    sessions = [
        {"id": user.pk, "username": user.username, "password": FUZZ_PASSWORD, **auth_tokens_issue(user=user)}
        for user in disposables
    ]
    state["login"], state["disposable"] = sessions[0], sessions[1:]
    return state


# --- The rig: database, server ---------------------------------------------------------


def _postgres_params(url: str) -> dict:
    import environ

    config = environ.Env.db_url_config(url)
    params = {"host": config["HOST"] or "127.0.0.1", "port": config["PORT"] or 5432, "user": config["USER"]}
    if config.get("PASSWORD"):
        params["password"] = config["PASSWORD"]
    return {"name": config["NAME"], **params}


def _on_postgresql(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://"))


def fuzz_database_url(base_url: str, workdir: Path, *, name: str | None = None) -> str:
    """The dedicated database: ``<name>_fuzz`` (or ``name``) on the same PostgreSQL
    server, else a SQLite file in the run's temporary directory."""
    if _on_postgresql(base_url):
        head, _, _ = base_url.partition("?")[0].rpartition("/")
        name = name or f"{_postgres_params(base_url)['name']}_fuzz"
        if not name.endswith("_fuzz"):
            raise SystemExit(f"fuzz: the database name must end in _fuzz (it is dropped): {name!r}")
        return f"{head}/{name}"
    return f"sqlite:///{workdir / 'fuzz.sqlite3'}"


def _recreate_postgres_database(url: str, *, drop_only: bool = False) -> None:
    import psycopg
    from psycopg import sql

    params = _postgres_params(url)
    name = params.pop("name")
    if not name.endswith("_fuzz"):  # never drop anything but a fuzz database
        raise SystemExit(f"refusing to drop {name!r}: not a fuzz database")
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if not drop_only:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(url: str, process: subprocess.Popen, log_path: Path, *, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited:\n{log_path.read_text(errors='replace')[-4000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:  # noqa: S310 - local
                if response.status == 200:
                    return
        except (OSError, urllib.error.HTTPError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"gunicorn did not answer /health:\n{log_path.read_text(errors='replace')[-4000:]}")


@contextlib.contextmanager
def gunicorn(env: dict[str, str], *, workers: int, log_path: Path) -> Iterator[str]:
    port = _free_port()
    env = {**env, "GUNICORN_WORKERS": str(workers), "GUNICORN_THREADS": "2"}
    with open(log_path, "w") as log:
        process = subprocess.Popen(  # noqa: S603 - our own binaries
            [str(BIN_DIR / "gunicorn"), "healthtrack.wsgi", "--config", "gunicorn.conf.py",
             "--bind", f"127.0.0.1:{port}"],
            cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process, log_path)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def server_env(*, database_url: str, redis_url: str, cache_prefix: str, static_root: Path) -> dict[str, str]:
    """Production settings (DEBUG off) over plain HTTP, fresh keys, rate limits off (the
    fuzzer sends far more than 10 requests a second from one address)."""
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECURE_TRANSPORT": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEY": secrets.token_urlsafe(32),
        "JWT_SIGNING_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": database_url,
        "CACHE_KEY_PREFIX": cache_prefix,
        "RATE_LIMIT_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
        "GUNICORN_ACCESS_LOG": "/dev/null",
        "GUNICORN_LOG_LEVEL": "warning",
        "PYTHONPATH": str(BASE_DIR),
        "STATIC_ROOT": str(static_root),
    }
    for name in ("SECRET_KEY_FALLBACKS", "FIELD_ENCRYPTION_KEY_FALLBACKS"):
        env.pop(name, None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    else:
        env.pop("REDIS_URL", None)
    return env


def _setup_django(env: dict[str, str]) -> None:
    os.environ.update({k: v for k, v in env.items() if k not in ("GUNICORN_ACCESS_LOG",)})
    if not env.get("REDIS_URL"):
        os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthtrack.settings")
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()


def _clear_cache_prefix(redis_url: str, prefix: str) -> None:
    """Delete the run's cache keys (the server's Redis database is shared with others)."""
    if not redis_url:
        return
    import redis

    client = redis.Redis.from_url(redis_url)
    with contextlib.suppress(redis.RedisError):
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])


def schemathesis_config(args: argparse.Namespace, workdir: Path) -> Path:
    """scripts/fuzz_schemathesis.toml plus the run's cache setting."""
    if args.no_cache:
        cache = "[cache]\nenabled = false\n"
    else:
        cache = f"[cache]\ndirectory = {json.dumps(str(args.cache_dir))}\n"
    path = workdir / "schemathesis.toml"
    path.write_text(CONFIG_FILE.read_text() + "\n" + cache)
    return path


def schemathesis_command(url: str, args: argparse.Namespace, config: Path) -> list[str]:
    command = [
        str(BIN_DIR / "schemathesis"), "--config-file", str(config), "run", f"{url}/api/schema",
        "--checks", ",".join(CHECKS),
        "--phases", args.phases,
        "--max-examples", str(args.max_examples),
        "--seed", str(args.seed),
        "--workers", str(args.workers),
        "--request-timeout", "30",
        "--generation-database", "none",
        "--report", "junit",
        "--report-dir", str(args.report_dir),
        "--no-color",
    ]  # fmt: skip
    for value in args.include_operation_id:
        command += ["--include-operation-id", value]
    for value in args.include_path_regex:
        command += ["--include-path-regex", value]
    for value in args.include_method:
        command += ["--include-method", value]
    return command


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--max-examples",
        type=int,
        default=DEFAULT_MAX_EXAMPLES,
        help="examples per operation in the fuzzing phase (default %(default)s)",
    )
    parser.add_argument("--phases", default=DEFAULT_PHASES, help="schemathesis phases (default %(default)s)")
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help="random seed, so a CI failure replays exactly (default %(default)s)",
    )
    # One worker: hypothesis parses lambda sources with `ast` in each worker thread, and
    # on this Python 3.11.7 that failed a CI run at random with "SystemError: AST
    # constructor recursion depth mismatch", a CPython bug in the ast module's recursion
    # bookkeeping seen in threaded programs (python/cpython#106905). It crashes the
    # fuzzer, not the server.
    parser.add_argument("--workers", type=int, default=1, help="schemathesis workers (default %(default)s)")
    parser.add_argument(
        "--server-workers", type=int, default=2, help="gunicorn workers (default %(default)s)"
    )
    parser.add_argument("--include-operation-id", action="append", default=[], help="only this operation")
    parser.add_argument("--include-path-regex", action="append", default=[], help="only paths matching")
    parser.add_argument("--include-method", action="append", default=[], help="only this HTTP method")
    parser.add_argument("--disposable-sessions", type=int, default=DISPOSABLE_SESSIONS)
    parser.add_argument("--report-dir", type=Path, default=BASE_DIR / "var" / "fuzz-report")
    parser.add_argument(
        "--database-name", help="PostgreSQL database to create and drop (default <DATABASE_URL name>_fuzz)"
    )
    parser.add_argument("--keep-database", action="store_true", help="do not drop the fuzz database")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=BASE_DIR / "var" / "schemathesis-cache",
        help="failures remembered between runs and replayed first (default %(default)s)",
    )
    parser.add_argument("--no-cache", action="store_true", help="neither replay nor remember failures")
    parser.add_argument("--require-services", action="store_true",
                        help="fail unless DATABASE_URL is PostgreSQL and REDIS_URL is set (CI)")  # fmt: skip
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    base_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    if args.require_services and not (_on_postgresql(base_url) and redis_url):
        print("fuzz: --require-services needs DATABASE_URL (PostgreSQL) and REDIS_URL", file=sys.stderr)
        return 2
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="ht-fuzz-"))
    database_url = fuzz_database_url(base_url, workdir, name=args.database_name)
    cache_prefix = f"htfuzz{secrets.token_hex(4)}"
    (workdir / "static").mkdir()
    env = server_env(
        database_url=database_url,
        redis_url=redis_url,
        cache_prefix=cache_prefix,
        static_root=workdir / "static",
    )
    where = (
        f"{_postgres_params(database_url)['name']} (PostgreSQL)" if _on_postgresql(database_url) else "SQLite"
    )
    print(
        f"fuzz: database {where}, cache {'Redis ' + redis_url if redis_url else 'local memory'}", flush=True
    )
    try:
        if _on_postgresql(database_url):
            _recreate_postgres_database(database_url)
        _setup_django(env)
        from django.core.management import call_command
        from django.db import connections

        call_command("migrate", "--noinput", verbosity=0)
        state = seed_fuzz_dataset(disposable_sessions=args.disposable_sessions)
        connections.close_all()
        state_path = workdir / "state.json"
        state_path.write_text(json.dumps(state))
        print(f"fuzz: migrated and seeded in {time.monotonic() - started:.1f}s", flush=True)

        log_path = workdir / "gunicorn.log"
        with gunicorn(env, workers=args.server_workers, log_path=log_path) as url:
            command = schemathesis_command(url, args, schemathesis_config(args, workdir))
            print("fuzz: " + " ".join(command), flush=True)
            hooks_env = {**env, "SCHEMATHESIS_HOOKS": "scripts.fuzz_hooks", "FUZZ_STATE": str(state_path)}
            status = subprocess.call(command, cwd=BASE_DIR, env=hooks_env)  # noqa: S603
        print(_status_table(state_path), flush=True)
        server_log = log_path.read_text(errors="replace").strip()
        if status != 0 and server_log:
            print("\n==> server log (tracebacks of 500s are here)\n" + server_log[-20_000:], flush=True)
        used = _disposable_used(state_path)
        print(
            f"fuzz: {'FAILED' if status else 'passed'} in {time.monotonic() - started:.0f}s"
            f" (throwaway sessions used: {used}/{len(state['disposable'])})",
            flush=True,
        )
        return status
    finally:
        if _on_postgresql(database_url) and not args.keep_database:
            with contextlib.suppress(Exception):
                from django.db import connections

                connections.close_all()
            _recreate_postgres_database(database_url, drop_only=True)
        _clear_cache_prefix(redis_url, cache_prefix)
        if not args.keep_database:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"fuzz: kept {database_url} and {workdir}")


def _status_table(state_path: Path) -> str:
    """Status codes per operation; operations that never answered 2xx are flagged: only
    their refusals were tested this run."""
    path = state_path.with_suffix(".statuses")
    statuses = json.loads(path.read_text()) if path.exists() else {}
    lines = ["fuzz: responses per operation"]
    for label in sorted(statuses, key=lambda text: text.split(" ")[::-1]):
        counts = ", ".join(f"{code} x{n}" for code, n in sorted(statuses[label].items()))
        flag = "" if any(code.startswith("2") for code in statuses[label]) else "   <- no 2xx this run"
        lines.append(f"  {label:55} {counts}{flag}")
    return "\n".join(lines)


def _disposable_used(state_path: Path) -> int:
    used_path = state_path.with_suffix(".used")
    return int(used_path.read_text() or 0) if used_path.exists() else 0


if __name__ == "__main__":
    sys.exit(main())
