"""Writes and rules for goals.

A goal moves from ``start_value`` towards ``target_value``. Whether "towards" means up
or down comes from the goal type when it has an inherent direction (weight loss goes
down, steps go up), otherwise from the sign of ``target - start``. ``progress_percent``
and "target reached" are pure functions of those numbers.

A goal linked to a metric type (``metric_type``) follows the person's data: its
``current_value`` is recomputed by ``goals_follow_metrics`` after every metric write
of that type (and on create/update of the goal), and reaching the target completes
it. Clients cannot set ``current_value`` of a linked goal.
"""

from __future__ import annotations

import datetime
import math
import zoneinfo
from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from goals.models import GoalStatus, GoalType, HealthGoal, Priority
from goals.selectors import goal_followed_metric_types, metric_current_value
from healthtrack.cache import user_data_version_bump
from metrics.registry import METRIC_TYPES, get_metric_type, normalize_unit
from users.selectors import user_timezone_name

UP, DOWN, EITHER = 1, -1, 0

# Goal types with an inherent direction; the others go wherever target - start points.
GOAL_DIRECTION: dict[str, int] = {
    GoalType.WEIGHT_LOSS: DOWN,
    GoalType.STRESS_REDUCTION: DOWN,
    GoalType.WEIGHT_GAIN: UP,
    GoalType.STEP_COUNT: UP,
    GoalType.BETTER_SLEEP: UP,
    GoalType.MORE_EXERCISE: UP,
    GoalType.HYDRATION: UP,
}

# Metric types a goal type may follow; goal types not listed may follow any type.
GOAL_METRIC_TYPES: dict[str, frozenset[str]] = {
    GoalType.WEIGHT_LOSS: frozenset({"weight"}),
    GoalType.WEIGHT_GAIN: frozenset({"weight"}),
    GoalType.STEP_COUNT: frozenset({"steps"}),
    GoalType.BETTER_SLEEP: frozenset({"sleep"}),
    GoalType.MORE_EXERCISE: frozenset({"exercise", "steps"}),
    GoalType.STRESS_REDUCTION: frozenset({"resting_heart_rate", "heart_rate"}),
}

# What a client may change after creation. The others define what the goal measures
# (goal_type, metric_type, unit, start_value); changing them would rewrite its history.
EDITABLE_FIELDS = (
    "title",
    "description",
    "current_value",
    "status",
    "priority",
    "target_value",
    "target_date",
)
IMMUTABLE_FIELDS = ("goal_type", "metric_type", "start_value", "unit")

# Allowed status changes; completing sets completed_at, reopening clears it.
STATUS_TRANSITIONS: dict[str, frozenset[str]] = {
    GoalStatus.ACTIVE: frozenset({GoalStatus.COMPLETED, GoalStatus.ABANDONED}),
    GoalStatus.COMPLETED: frozenset({GoalStatus.ACTIVE}),
    GoalStatus.ABANDONED: frozenset({GoalStatus.ACTIVE}),
}

# Bounds for goals not linked to a metric type (linked ones use the type's range).
FREE_VALUE_LIMIT = 1e9


# --- Pure rules ---------------------------------------------------------------------


def goal_direction(*, goal_type: str, start_value: float | None, target_value: float | None) -> int:
    """UP, DOWN, or EITHER (no inherent direction and start unknown or equal to target)."""
    inherent = GOAL_DIRECTION.get(goal_type)
    if inherent is not None:
        return inherent
    if start_value is None or target_value is None or math.isclose(start_value, target_value):
        return EITHER
    return UP if target_value > start_value else DOWN


def goal_target_reached(
    *, goal_type: str, start_value: float | None, current_value: float | None, target_value: float | None
) -> bool:
    """Is ``current_value`` at or past the target in the goal's direction?"""
    if current_value is None or target_value is None:
        return False
    direction = goal_direction(goal_type=goal_type, start_value=start_value, target_value=target_value)
    if direction == UP:
        return current_value >= target_value
    if direction == DOWN:
        return current_value <= target_value
    return math.isclose(current_value, target_value)


def goal_progress_percent(
    *, goal_type: str, start_value: float | None, current_value: float | None, target_value: float | None
) -> float | None:
    """How far from start to target the current value is, 0-100, one decimal.

    100 exactly when the target is reached (in the goal's direction), at most 99.9
    before; None without a current value, or without a start value while not reached.
    Works the same for goals that go down (weight loss: start 90, target 80, current 85
    is 50%) and up; moving the wrong way is 0, not negative. start == target (not yet
    reached) is 0, never a division by zero.
    """
    if current_value is None or target_value is None:
        return None
    if goal_target_reached(
        goal_type=goal_type, start_value=start_value, current_value=current_value, target_value=target_value
    ):
        return 100.0
    if start_value is None:
        return None
    span = target_value - start_value
    if math.isclose(span, 0.0):
        return 0.0
    fraction = (current_value - start_value) / span
    # 100 means reached: just short of the target shows 99.9, never a rounded-up 100.
    return min(round(max(fraction, 0.0) * 100, 1), 99.9)


def goal_progress_of(goal: HealthGoal) -> float | None:
    return goal_progress_percent(
        goal_type=goal.goal_type,
        start_value=goal.start_value,
        current_value=goal.current_value,
        target_value=goal.target_value,
    )


def _value_errors(*, name: str, value: float | None, metric_type: str) -> list[str]:
    if value is None:
        return []
    kind = get_metric_type(metric_type) if metric_type else None
    if kind is None:
        if not -FREE_VALUE_LIMIT <= value <= FREE_VALUE_LIMIT:
            return [f"Must be between {-FREE_VALUE_LIMIT:g} and {FREE_VALUE_LIMIT:g}."]
        return []
    if not kind.min_value <= value <= kind.max_value:
        return [
            f"Must be between {kind.min_value:g} and {kind.max_value:g} {kind.canonical_unit} "
            f"for {metric_type}."
        ]
    return []


def _local_today(tz: str) -> datetime.date:
    return timezone.localtime(timezone.now(), zoneinfo.ZoneInfo(tz)).date()


def _subject_timezone(user_id: int) -> str:
    return user_timezone_name(user_id=user_id) or "UTC"


def _direction_error(goal_type: str, start_value: float) -> str:
    word = "below" if GOAL_DIRECTION.get(goal_type) == DOWN else "above"
    return (
        f"Already reached: for a {goal_type} goal the target must be {word} "
        f"the start value ({start_value:g})."
    )


# --- Writes -------------------------------------------------------------------------


@transaction.atomic
def goal_create(
    *,
    user_id: int,
    goal_type: str,
    title: str,
    target_value: float,
    description: str = "",
    metric_type: str | None = None,
    start_value: float | None = None,
    current_value: float | None = None,
    unit: str | None = None,
    priority: str = Priority.MEDIUM,
    target_date: datetime.date | None = None,
) -> HealthGoal:
    """Create an active goal.

    Linked goals (``metric_type`` set): ``unit`` defaults to the type's canonical unit
    and may be any unit the type accepts (``lb`` for weight): values are converted and
    stored canonically; ``target_value`` and ``start_value`` must lie in the type's
    range; ``current_value`` comes from the data (sending one is a 400) and
    ``start_value`` defaults to it. A target already reached, or a ``target_date``
    before the user's local today, is a 400.
    """
    metric_type = metric_type or ""
    errors: dict[str, list[str]] = {}
    kind = get_metric_type(metric_type) if metric_type else None
    if metric_type and kind is None:
        errors["metric_type"] = [f"Must be one of: {', '.join(METRIC_TYPES)}."]
    allowed = GOAL_METRIC_TYPES.get(goal_type)
    if kind is not None and allowed is not None and metric_type not in allowed:
        errors["metric_type"] = [f"A {goal_type} goal can follow: {', '.join(sorted(allowed))}."]
    if kind is not None:
        if current_value is not None:
            errors["current_value"] = [f"Follows your {metric_type} data and cannot be set; leave it out."]
        if unit:
            try:
                unit = normalize_unit(unit, kind)
            except KeyError:
                errors["unit"] = [f"Must be one of: {', '.join(kind.accepted_units())} for {metric_type}."]
        if "unit" not in errors:
            target_value = kind.to_canonical(target_value, unit or None)
            if start_value is not None:
                start_value = kind.to_canonical(start_value, unit or None)
            unit = kind.canonical_unit
    unit = unit or ""
    for name, value in (
        ("target_value", target_value),
        ("start_value", start_value),
        ("current_value", current_value),
    ):
        if name not in errors and (
            problems := _value_errors(name=name, value=value, metric_type=metric_type if kind else "")
        ):
            errors[name] = problems
    tz = _subject_timezone(user_id)
    if target_date is not None and target_date < _local_today(tz):
        errors["target_date"] = ["May not be in the past."]
    if errors:
        raise ValidationError(errors)

    if kind is not None:
        current_value = metric_current_value(user_id=user_id, metric_type=metric_type, tz=tz)
    if start_value is None:
        start_value = current_value
    if start_value is not None and goal_target_reached(
        goal_type=goal_type, start_value=start_value, current_value=start_value, target_value=target_value
    ):
        raise ValidationError({"target_value": [_direction_error(goal_type, start_value)]})
    if goal_target_reached(
        goal_type=goal_type, start_value=start_value, current_value=current_value, target_value=target_value
    ):
        raise ValidationError(
            {"target_value": [f"Already reached by the current value ({current_value:g})."]}
        )

    goal = HealthGoal.objects.create(
        user_id=user_id,
        goal_type=goal_type,
        title=title,
        description=description or "",
        metric_type=metric_type,
        start_value=start_value,
        current_value=current_value,
        target_value=target_value,
        unit=unit,
        priority=priority,
        target_date=target_date,
    )
    user_data_version_bump(user_id=user_id)
    return goal


def _same(stored: Any, sent: Any) -> bool:
    if isinstance(stored, float) and isinstance(sent, float | int):
        return math.isclose(stored, sent)
    return (stored or None) == (sent or None) if isinstance(stored, str) else stored == sent


@transaction.atomic
def goal_update(*, goal: HealthGoal, changes: Mapping[str, Any]) -> HealthGoal:
    """Apply ``changes`` to ``goal`` (any of EDITABLE_FIELDS).

    IMMUTABLE_FIELDS may be sent back unchanged (a PUT of a GET body) but not changed.
    Status changes follow STATUS_TRANSITIONS. A linked goal refreshes ``current_value``
    from the data; an active goal whose target is reached becomes completed, while
    reopening a goal whose target is still reached is a 400 (change the target too).
    """
    goal = HealthGoal.objects.select_for_update().filter(pk=goal.pk).first()
    if goal is None:  # deleted meanwhile
        raise Http404
    errors: dict[str, list[str]] = {
        name: ["Cannot be changed after creation; create a new goal instead."]
        for name in IMMUTABLE_FIELDS
        if name in changes and not _same(getattr(goal, name), changes[name])
    }
    linked = bool(goal.metric_type)
    if linked and "current_value" in changes and not _same(goal.current_value, changes["current_value"]):
        errors["current_value"] = [f"Follows your {goal.metric_type} data and cannot be set; leave it out."]
    new_status = changes.get("status", goal.status)
    if new_status != goal.status and new_status not in STATUS_TRANSITIONS[goal.status]:
        allowed = ", ".join(sorted(STATUS_TRANSITIONS[goal.status]))
        errors["status"] = [f"From {goal.status}, a goal can only become: {allowed}."]
    for name in ("target_value", "current_value"):
        if name in changes and name not in errors:
            if changes[name] is None and name == "target_value":
                errors[name] = ["This field may not be null."]
            elif problems := _value_errors(name=name, value=changes[name], metric_type=goal.metric_type):
                errors[name] = problems
    tz = _subject_timezone(goal.user_id)
    target_date = changes.get("target_date", goal.target_date)
    if target_date is not None and target_date != goal.target_date and target_date < _local_today(tz):
        errors["target_date"] = ["May not be in the past."]
    if errors:
        raise ValidationError(errors)

    target_value = changes.get("target_value", goal.target_value)
    if (
        GOAL_DIRECTION.get(goal.goal_type) is not None
        and not _same(goal.target_value, target_value)
        and goal.start_value is not None
        and goal_target_reached(
            goal_type=goal.goal_type,
            start_value=goal.start_value,
            current_value=goal.start_value,
            target_value=target_value,
        )
    ):
        raise ValidationError({"target_value": [_direction_error(goal.goal_type, goal.start_value)]})

    for name in ("title", "description", "priority", "target_value", "target_date"):
        if name in changes:
            setattr(goal, name, changes[name] if name != "description" else changes[name] or "")
    if linked and new_status == GoalStatus.ACTIVE:
        # Only active goals follow the data; a finished one keeps its last value.
        goal.current_value = metric_current_value(user_id=goal.user_id, metric_type=goal.metric_type, tz=tz)
        if goal.start_value is None:
            goal.start_value = goal.current_value
    elif "current_value" in changes:
        goal.current_value = changes["current_value"]

    reached = goal_target_reached(
        goal_type=goal.goal_type,
        start_value=goal.start_value,
        current_value=goal.current_value,
        target_value=goal.target_value,
    )
    if new_status == GoalStatus.ACTIVE and goal.status != GoalStatus.ACTIVE and reached:
        raise ValidationError(
            {"status": ["The target is already reached; change target_value to reopen this goal."]}
        )
    if new_status == GoalStatus.ACTIVE and reached:
        new_status = GoalStatus.COMPLETED
    _set_status(goal, new_status)
    goal.save()
    user_data_version_bump(user_id=goal.user_id)
    return goal


def _set_status(goal: HealthGoal, status: str, now: datetime.datetime | None = None) -> None:
    if status == goal.status:
        return
    goal.status = status
    goal.completed_at = (now or timezone.now()) if status == GoalStatus.COMPLETED else None


@transaction.atomic
def goal_delete(*, goal: HealthGoal) -> None:
    user_id = goal.user_id
    goal.delete()
    user_data_version_bump(user_id=user_id)


def goals_follow_metrics(*, user_id: int, metric_types: Iterable[str]) -> None:
    """Bring the user's active goals linked to ``metric_types`` up to date with their data.

    Called by the metrics services after every write of those types, so the common
    case (no active goal follows these types) costs exactly one small indexed query.
    Otherwise, in a transaction with the goals locked (concurrent metric writes queue
    up and the later one sees both samples): one aggregate query per linked type,
    ``current_value`` set, ``start_value`` set to the first value seen when there was no
    data at creation, and goals whose target is reached completed. Bumps the user's
    data version when a goal changed.
    """
    wanted = {metric_type for metric_type in metric_types if metric_type in METRIC_TYPES}
    if not wanted:
        return
    followed = goal_followed_metric_types(user_id=user_id, metric_types=sorted(wanted))
    if followed:
        _goals_refresh(user_id=user_id, metric_types=followed)


@transaction.atomic
def _goals_refresh(*, user_id: int, metric_types: Iterable[str]) -> None:
    goals = list(
        HealthGoal.objects.select_for_update()
        .filter(user_id=user_id, status=GoalStatus.ACTIVE, metric_type__in=list(metric_types))
        .order_by("pk")
    )
    if not goals:
        return
    tz = _subject_timezone(user_id)
    values = {
        metric_type: metric_current_value(user_id=user_id, metric_type=metric_type, tz=tz)
        for metric_type in {goal.metric_type for goal in goals}
    }
    now = timezone.now()
    changed = []
    for goal in goals:
        before = (goal.start_value, goal.current_value, goal.status)
        goal.current_value = values[goal.metric_type]
        if goal.start_value is None:
            goal.start_value = goal.current_value
        if goal_target_reached(
            goal_type=goal.goal_type,
            start_value=goal.start_value,
            current_value=goal.current_value,
            target_value=goal.target_value,
        ):
            _set_status(goal, GoalStatus.COMPLETED, now)
        if (goal.start_value, goal.current_value, goal.status) != before:
            goal.updated_at = now
            changed.append(goal)
    if changed:
        HealthGoal.objects.bulk_update(
            changed, ["start_value", "current_value", "status", "completed_at", "updated_at"]
        )
        user_data_version_bump(user_id=user_id)
