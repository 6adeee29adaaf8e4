"""The plain data the rules read: one person's window of data, one number per local day.

Built by ``insights.selectors`` from aggregate queries; built by hand in the rule tests.
No ORM here. Values are in the canonical unit of their type (metrics/registry.py).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from metrics.registry import METRIC_TYPES, DailyAggregate

# Kilocalories per gram, for the energy share of macronutrients.
KCAL_PER_G_PROTEIN = 4.0
KCAL_PER_G_CARBS = 4.0
KCAL_PER_G_FAT = 9.0


class DayValue(NamedTuple):
    """One metric type on one local day.

    ``value`` is the day's number as the registry's ``DailyAggregate`` says (steps and
    sleep summed, heart rate averaged, weight the latest sample). ``minimum`` and
    ``maximum`` are the day's extreme samples (averaged types); ``secondary`` and
    ``secondary_max`` are the diastolic average and maximum for blood pressure.
    (A named tuple: the selectors build hundreds of thousands per batch.)
    """

    value: float
    minimum: float | None = None
    maximum: float | None = None
    secondary: float | None = None
    secondary_max: float | None = None
    samples: int = 1


class NutritionDay(NamedTuple):
    """Totals of one local day's meals and drinks; None where nothing of it was logged."""

    calories: float | None = None
    protein_g: float | None = None
    carbs_g: float | None = None
    fat_g: float | None = None
    water_ml: float | None = None

    @property
    def energy_kcal(self) -> float | None:
        """Logged calories, or the energy of the logged macros when calories are missing."""
        if self.calories:
            return self.calories
        macros = [
            (self.protein_g, KCAL_PER_G_PROTEIN),
            (self.carbs_g, KCAL_PER_G_CARBS),
            (self.fat_g, KCAL_PER_G_FAT),
        ]
        if all(grams is None for grams, _ in macros):
            return self.calories
        return sum((grams or 0.0) * kcal for grams, kcal in macros)


@dataclass(frozen=True, slots=True)
class GoalFact:
    """An active goal. Values are in the canonical unit of ``metric_type`` (the selector
    converts a goal kept in lb, minutes ...). ``metric_type`` is the goal's own link, or
    the one its type implies (``weight_loss`` → weight); empty when there is none."""

    id: int
    goal_type: str
    metric_type: str
    priority: str
    target_value: float
    start_value: float | None = None
    current_value: float | None = None
    target_date: datetime.date | None = None
    created_on: datetime.date | None = None
    title: str = ""


@dataclass(frozen=True, slots=True)
class ProfileFacts:
    """What the profile says about the body: age in whole years, ``sex`` as ``male`` or
    ``female`` (None when not given or neither), height in cm. ``weight_unit`` is how the
    person thinks of their weight (``kg`` or ``lb``), used in sentences only."""

    age_years: int | None = None
    sex: str | None = None
    height_cm: float | None = None
    weight_unit: str = "kg"


@dataclass(frozen=True)
class UserFeatures:
    """One person's data for the ``window_days`` local days ending ``today`` (inclusive).

    The accessors below are memoised: several rules read the same series.
    """

    user_id: int
    today: datetime.date
    window_days: int
    profile: ProfileFacts = field(default_factory=ProfileFacts)
    metrics: Mapping[str, Mapping[datetime.date, DayValue]] = field(default_factory=dict)
    nutrition: Mapping[datetime.date, NutritionDay] = field(default_factory=dict)
    goals: tuple[GoalFact, ...] = ()
    _memo: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def window_start(self) -> datetime.date:
        return self.today - datetime.timedelta(days=max(self.window_days, 1) - 1)

    def _days(self, by_day: Mapping, *, complete_only: bool) -> list:
        start, end = self.window_start, self.today
        if complete_only:
            end = end - datetime.timedelta(days=1)
        return sorted(item for item in by_day.items() if start <= item[0] <= end)

    def metric_days(self, metric_type: str) -> list[tuple[datetime.date, DayValue]]:
        """``(day, value)`` for each day with data, oldest first.

        For types summed over a day (steps, exercise) today is left out: the day is not
        over, and a morning's partial total would read as a very inactive day. Sleep is
        counted on the day the night ends, so today's night is complete and kept.
        """
        key = ("metric", metric_type)
        if key not in self._memo:
            self._memo[key] = self._days(
                self.metrics.get(metric_type) or {}, complete_only=_is_running_total(metric_type)
            )
        return self._memo[key]

    def metric_values(self, metric_type: str) -> list[float]:
        return [value.value for _, value in self.metric_days(metric_type)]

    def nutrition_days(self, *, complete_only: bool = True) -> list[tuple[datetime.date, NutritionDay]]:
        """Nutrition totals per day, oldest first; today left out unless asked (meals
        still to come would read as under-eating)."""
        key = ("nutrition", complete_only)
        if key not in self._memo:
            self._memo[key] = self._days(self.nutrition, complete_only=complete_only)
        return self._memo[key]

    def days_with_any(self, item: str) -> int:
        """Days with any data of ``item`` in the window, today included: a metric type,
        ``meals`` or ``water``."""
        if item == "meals":
            return sum(
                1 for _, totals in self.nutrition_days(complete_only=False) if totals.energy_kcal is not None
            )
        if item == "water":
            return sum(
                1 for _, totals in self.nutrition_days(complete_only=False) if totals.water_ml is not None
            )
        start, end = self.window_start, self.today
        return sum(1 for day in self.metrics.get(item) or () if start <= day <= end)


def _is_running_total(metric_type: str) -> bool:
    metric = METRIC_TYPES.get(metric_type)
    return bool(metric and metric.daily_aggregate is DailyAggregate.SUM and metric_type != "sleep")
