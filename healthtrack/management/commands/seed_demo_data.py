"""Seed realistic synthetic people: profiles, goals, daily metrics, meals and water."""

from __future__ import annotations

import sys
import time
from datetime import UTC, date, datetime, timedelta

from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError, CommandParser

from healthtrack.demo_data.loader import DemoDataError, demo_data_seed
from healthtrack.demo_data.personas import PERSONAS, PERSONAS_BY_CODE

DEFAULT_SEED = 42


def default_anchor(now: datetime | None = None) -> date:
    """The last whole local day everywhere on Earth (UTC-12 included): seeded samples are
    never in the future, whatever the person's time zone."""
    now = now or datetime.now(tz=UTC)
    return (now - timedelta(hours=12)).date() - timedelta(days=1)


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--end-date: '{value}' is not a date (YYYY-MM-DD).") from None


def _default_jobs(people: int) -> int:
    if people < 1000:
        return 0  # generate in this process: not worth starting others
    # One generator: on two cores, PostgreSQL needs the other one for COPY, indexes and
    # foreign-key checks (measured: 1 worker ~63 s, 2 workers ~76 s for 10,000 people).
    return 1


class Command(BaseCommand):
    help = (
        "Create N synthetic demo people (personas: healthy baseline, sedentary office worker, runner, "
        "poor sleeper, hypertensive, pre-diabetic, trying to lose weight) with profiles, goals and D days "
        "of metrics, meals and water. Deterministic for --seed and --end-date. Demo accounts are in the "
        "'demo-people' group with addresses at demo.healthtrack.invalid; --reset deletes exactly those."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--users", type=int, default=100, help="demo people to create (default 100)")
        parser.add_argument("--days", type=int, default=30, help="days of data per person (default 30)")
        parser.add_argument(
            "--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})"
        )
        parser.add_argument(
            "--end-date",
            type=_date,
            default=None,
            help="last local day with data, YYYY-MM-DD (default: the last day that has ended "
            "in every time zone). Fix it to reproduce a data set exactly.",
        )
        parser.add_argument(
            "--reset", action="store_true", help="delete previously seeded demo people and their data first"
        )
        parser.add_argument(
            "--include-user",
            type=int,
            action="append",
            default=[],
            metavar="ID",
            help="also give this existing account demo data (repeatable); replaces the demo data "
            "an earlier run gave it, never its own",
        )
        parser.add_argument(
            "--include-persona",
            choices=sorted(PERSONAS_BY_CODE),
            default=None,
            help="persona for --include-user accounts (default: one per account, by id)",
        )
        parser.add_argument(
            "--password",
            default=None,
            help="one password for every demo person, hashed once (default: unusable passwords, "
            "nobody can sign in as a demo person)",
        )
        parser.add_argument(
            "--jobs",
            type=int,
            default=None,
            help="worker processes generating data while this one writes; 0 generates in this "
            "process (default: 0 below 1,000 people, else 1)",
        )

    def handle(self, *args, **options):
        users, days = options["users"], options["days"]
        if users < 0:
            raise CommandError("--users must be 0 or more.")
        if not 1 <= days <= 3660:
            raise CommandError("--days must be between 1 and 3660.")
        if users == 0 and not options["include_user"]:
            raise CommandError("Nothing to do: --users is 0 and no --include-user given.")
        anchor = options["end_date"] or default_anchor()
        jobs = _default_jobs(users) if options["jobs"] is None else max(0, options["jobs"])
        persona_code = options["include_persona"]

        def persona_for(user_id: int):
            return PERSONAS_BY_CODE[persona_code] if persona_code else PERSONAS[user_id % len(PERSONAS)]

        # One hash for everyone: hashing thousands of Argon2 passwords would take minutes.
        password_hash = make_password(options["password"])
        first_day = anchor - timedelta(days=days - 1)
        verbose = options["verbosity"] >= 1
        if verbose:
            included = ", ".join(map(str, options["include_user"]))
            self.stdout.write(
                f"Seeding {users} demo people, {days} days ({first_day}..{anchor}), seed {options['seed']}"
                + (f", plus account(s) {included}" if included else "")
            )
        try:
            result = demo_data_seed(
                users=users,
                days=days,
                seed=options["seed"],
                anchor=anchor,
                password_hash=password_hash,
                reset=options["reset"],
                include_user_ids=options["include_user"],
                persona_for_included=persona_for,
                jobs=jobs,
                progress=self._progress_printer() if verbose else None,
            )
        except DemoDataError as error:
            raise CommandError(str(error)) from None
        if verbose:
            if options["reset"]:
                removed = ", ".join(f"{count} {label}" for label, count in result.removed.items())
                self.stdout.write(f"Removed earlier demo data: {removed}.")
            self.stdout.write(
                self.style.SUCCESS(
                    f"Seeded {result.people} people (+{result.included} existing): "
                    f"{result.metrics:,} metrics, {result.nutrition_logs:,} nutrition logs, "
                    f"{result.goals:,} goals in {result.seconds:.1f} s."
                )
            )
            if options["password"] is None and result.people:
                self.stdout.write("Demo people have unusable passwords (use --password to sign in as them).")

    def _progress_printer(self):
        """A progress line on a terminal; nothing when output goes to a file or pipe."""
        if not sys.stderr.isatty():
            return None
        started = time.monotonic()

        def show(done: int, total: int, rows: int) -> None:
            elapsed = time.monotonic() - started
            end = "\n" if done >= total else ""
            sys.stderr.write(f"\r  {done:,}/{total:,} people, {rows:,} rows, {elapsed:.0f} s{end}")
            sys.stderr.flush()

        return show
