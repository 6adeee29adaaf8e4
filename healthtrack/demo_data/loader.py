"""Writing demo people to the database: bulk inserts, COPY on PostgreSQL, and --reset.

Seeded accounts are recognised by two marks together, never by one alone: membership
of the ``demo-people`` group (only the seeder and admins add anyone to a group) and an
email address at ``demo.healthtrack.invalid`` (a reserved top-level domain no real
mailbox can have). ``--reset`` deletes exactly those accounts and everything they own.
"""

from __future__ import annotations

import multiprocessing
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import islice

from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.db.models import QuerySet
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from goals.models import HealthGoal
from healthtrack.cache import user_data_version_bump
from healthtrack.demo_data.generator import (
    DEMO_EMAIL_DOMAIN,
    DEMO_GOAL_MARKER,
    Chunk,
    ChunkOutput,
    PersonSpec,
    generate_chunk,
    included_person_spec,
    person_spec,
)
from healthtrack.demo_data.personas import Persona
from insights.models import HealthInsight
from metrics.models import HealthMetric, Source
from nutrition.models import NutritionLog
from users.models import CareTeamMembership, Profile, RevokedSession, User
from users.selectors import user_auth_snapshot_invalidate

DEMO_GROUP = "demo-people"
# People per unit of work: big enough that COPY runs long, small enough for progress.
CHUNK_PEOPLE = 250
_METRIC_COLUMNS = (
    "user_id, metric_type, value, secondary_value, unit, recorded_at, source, external_id, notes, created_at"
)
_NUTRITION_COLUMNS = (
    "user_id, meal_type, description, calories, protein_g, carbs_g, fat_g, water_ml, logged_at, source, "
    "external_id, created_at"
)


class DemoDataError(Exception):
    """The seed cannot run as asked (the message says why and what to do)."""


def demo_users() -> QuerySet[User]:
    """Accounts made by seed_demo_data: in the demo group AND with a demo address."""
    return User.objects.filter(groups__name=DEMO_GROUP, email__iendswith=f"@{DEMO_EMAIL_DOMAIN}")


@dataclass
class SeedResult:
    people: int = 0
    included: int = 0
    metrics: int = 0
    nutrition_logs: int = 0
    goals: int = 0
    seconds: float = 0.0
    removed: dict[str, int] = field(default_factory=dict)


# --- Reset ------------------------------------------------------------------------------


def demo_data_reset() -> dict[str, int]:
    """Delete every seeded account and all it owns; returns counts per kind.

    The heavy tables go first with one set-based DELETE each (no rows are loaded into
    Python); the audit trail is left alone (append-only, and it references users
    without a foreign key).
    """
    ids = list(demo_users().values_list("id", flat=True))
    removed: dict[str, int] = {"people": len(ids)}
    if not ids:
        return removed
    subquery = demo_users().values("id")
    for label, queryset in (
        ("metrics", HealthMetric.objects.filter(user_id__in=subquery)),
        ("nutrition_logs", NutritionLog.objects.filter(user_id__in=subquery)),
        ("goals", HealthGoal.objects.filter(user_id__in=subquery)),
        ("insights", HealthInsight.objects.filter(user_id__in=subquery)),
    ):
        removed[label] = queryset.delete()[0]
    CareTeamMembership.objects.filter(patient_id__in=subquery).delete()
    CareTeamMembership.objects.filter(clinician_id__in=subquery).delete()
    RevokedSession.objects.filter(user_id__in=subquery).delete()
    OutstandingToken.objects.filter(user_id__in=subquery).delete()
    Profile.objects.filter(user_id__in=subquery).delete()
    User.groups.through.objects.filter(user_id__in=subquery).delete()  # last: the subquery needs it
    for start in range(0, len(ids), 5000):
        User.objects.filter(pk__in=ids[start : start + 5000]).delete()
    for user_id in ids:
        user_auth_snapshot_invalidate(user_id=user_id)  # their tokens stop working at once
    return removed


def _included_demo_data_clear(user_ids: list[int]) -> None:
    HealthMetric.objects.filter(user_id__in=user_ids, source=Source.DEMO).delete()
    NutritionLog.objects.filter(user_id__in=user_ids, source=Source.DEMO).delete()
    HealthGoal.objects.filter(user_id__in=user_ids, description__endswith=DEMO_GOAL_MARKER).delete()


# --- Generation, in worker processes with --jobs > 0 ---------------------------------


def _generated(chunks: list[Chunk], jobs: int) -> Iterator[ChunkOutput]:
    """Chunks in order; with ``jobs`` > 0, made by that many worker processes while this
    one writes, so generation and the database's work overlap. At most two chunks per
    worker are in flight, which bounds memory whatever the number of people."""
    if jobs <= 0 or len(chunks) <= 1:
        yield from map(generate_chunk, chunks)
        return
    # spawn, not fork: a forked child would share the parent's open database socket.
    with multiprocessing.get_context("spawn").Pool(processes=jobs) as pool:
        queue = iter(chunks)
        in_flight = deque(pool.apply_async(generate_chunk, (chunk,)) for chunk in islice(queue, 2 * jobs))
        while in_flight:
            output = in_flight.popleft().get()
            following = next(queue, None)
            if following is not None:
                in_flight.append(pool.apply_async(generate_chunk, (following,)))
            yield output


# --- Writers ------------------------------------------------------------------------------


def _epoch_datetime(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def _write_chunk(output: ChunkOutput, *, created: datetime) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            raw = cursor.cursor  # the psycopg cursor under Django's wrapper
            with raw.copy(f"COPY metrics_healthmetric ({_METRIC_COLUMNS}) FROM STDIN") as copy:
                copy.write(output.metric_text)
            with raw.copy(f"COPY nutrition_nutritionlog ({_NUTRITION_COLUMNS}) FROM STDIN") as copy:
                copy.write(output.nutrition_text)
    else:
        HealthMetric.objects.bulk_create(
            [
                HealthMetric(
                    user_id=user_id,
                    metric_type=metric_type,
                    value=value,
                    secondary_value=secondary,
                    unit=unit,
                    recorded_at=_epoch_datetime(epoch),
                    source=Source.DEMO,
                    created_at=created,
                )
                for user_id, (metric_type, value, secondary, unit, epoch) in output.metrics
            ],
            batch_size=5000,
        )
        NutritionLog.objects.bulk_create(
            [
                NutritionLog(
                    user_id=user_id,
                    meal_type=meal_type,
                    description=description,
                    calories=calories,
                    protein_g=protein,
                    carbs_g=carbs,
                    fat_g=fat,
                    water_ml=water,
                    logged_at=_epoch_datetime(epoch),
                    source=Source.DEMO,
                    created_at=created,
                )
                for user_id, (meal_type, description, calories, protein, carbs, fat, water, epoch) in (
                    output.nutrition
                )
            ],
            batch_size=5000,
        )
    HealthGoal.objects.bulk_create([HealthGoal(user_id=user_id, **goal) for user_id, goal in output.goals])


def _create_people(specs: list[PersonSpec], password_hash: str) -> list[int]:
    """Accounts, profiles and group membership for new demo people; returns their ids."""
    taken = set(
        User.objects.filter(username__in=[spec.username for spec in specs]).values_list("username", flat=True)
    )
    if taken:
        example = sorted(taken)[0]
        raise DemoDataError(
            f"{len(taken)} demo username(s) already exist (e.g. '{example}'): run with --reset to "
            "replace the demo people seeded earlier."
        )
    users = User.objects.bulk_create(
        [
            User(
                username=spec.username,
                email=spec.email,
                first_name=spec.first_name,
                last_name=spec.last_name,
                password=password_hash,
                date_joined=spec.date_joined,
            )
            for spec in specs
        ],
        batch_size=2000,
    )
    ids = [user.pk for user in users]
    if any(user_id is None for user_id in ids):  # backends that cannot return ids
        by_username = dict(
            User.objects.filter(username__in=[s.username for s in specs]).values_list("username", "id")
        )
        ids = [by_username[spec.username] for spec in specs]
    group, _ = Group.objects.get_or_create(name=DEMO_GROUP)
    User.groups.through.objects.bulk_create(
        [User.groups.through(user_id=user_id, group_id=group.pk) for user_id in ids], batch_size=5000
    )
    Profile.objects.bulk_create(
        [
            Profile(
                user_id=user_id,
                date_of_birth=spec.date_of_birth,
                gender=spec.gender,
                height_cm=spec.height_cm,
                occupation=spec.occupation,
                medical_history=spec.medical_history,
                timezone=spec.timezone,
            )
            for user_id, spec in zip(ids, specs, strict=True)
        ],
        batch_size=2000,
    )
    return ids


def _included_specs(user_ids: list[int], persona_for: Callable[[int], Persona]) -> list[PersonSpec]:
    rows = {
        row["id"]: row
        for row in User.objects.filter(pk__in=user_ids).values(
            "id",
            "username",
            "email",
            "first_name",
            "last_name",
            "date_joined",
            "profile__gender",
            "profile__height_cm",
            "profile__timezone",
        )
    }
    missing = [user_id for user_id in user_ids if user_id not in rows]
    if missing:
        raise DemoDataError(f"--include-user: no account with id {', '.join(map(str, missing))}.")
    return [
        included_person_spec(
            user_id=user_id,
            persona=persona_for(user_id),
            username=rows[user_id]["username"],
            email=rows[user_id]["email"],
            first_name=rows[user_id]["first_name"],
            last_name=rows[user_id]["last_name"],
            gender=rows[user_id]["profile__gender"] or "",
            height_cm=rows[user_id]["profile__height_cm"],
            timezone=rows[user_id]["profile__timezone"] or "UTC",
            date_joined=rows[user_id]["date_joined"],
        )
        for user_id in user_ids
    ]


def demo_data_seed(
    *,
    users: int,
    days: int,
    seed: int,
    anchor: date,
    password_hash: str,
    reset: bool = False,
    include_user_ids: list[int] | None = None,
    persona_for_included: Callable[[int], Persona],
    jobs: int = 0,
    progress: Callable[[int, int, int], None] | None = None,
) -> SeedResult:
    """Create ``users`` demo people with ``days`` days of data ending on ``anchor``, and
    give the accounts ``include_user_ids`` the same kind of data.

    All in one transaction: an interrupted run leaves nothing behind. Deterministic for
    (seed, anchor, days): the same people, values and instants every time.
    """
    started = time.monotonic()
    result = SeedResult()
    include_user_ids = list(dict.fromkeys(include_user_ids or []))
    created = datetime.now(tz=UTC)
    with transaction.atomic():
        if reset:
            result.removed = demo_data_reset()
        included = _included_specs(include_user_ids, persona_for_included)
        _included_demo_data_clear(include_user_ids)
        specs = [person_spec(seed=seed, index=index, anchor=anchor, days=days) for index in range(users)]
        ids = _create_people(specs, password_hash) if specs else []
        people = list(zip(ids, specs, strict=True)) + list(zip(include_user_ids, included, strict=True))
        chunks = [
            Chunk(
                seed=seed,
                anchor=anchor,
                days=days,
                people=tuple(people[start : start + CHUNK_PEOPLE]),
                created=created,
                as_copy_text=connection.vendor == "postgresql",
            )
            for start in range(0, len(people), CHUNK_PEOPLE)
        ]
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # Django's foreign keys are DEFERRABLE INITIALLY DEFERRED: millions of
                # checks queued up for COMMIT would run there alone, after generation has
                # finished. Checked row by row during COPY, they overlap with it instead.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                # One big transaction; losing it in a crash just means seeding again.
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        done = 0
        for output in _generated(chunks, jobs):
            _write_chunk(output, created=created)
            done += output.people
            result.metrics += output.metric_rows
            result.nutrition_logs += output.nutrition_rows
            result.goals += len(output.goals)
            if progress is not None:
                progress(done, len(people), result.metrics + result.nutrition_logs)
        for user_id in include_user_ids:
            user_data_version_bump(user_id=user_id)
    if connection.vendor == "postgresql" and result.metrics > 100_000:
        # Fresh statistics so the first queries after a big load get good plans.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE metrics_healthmetric, nutrition_nutritionlog, goals_healthgoal")
    result.people = users
    result.included = len(include_user_ids)
    result.seconds = time.monotonic() - started
    return result
