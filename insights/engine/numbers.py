"""Small numeric helpers the rules share: safe averages, rounding, trends, formatting."""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal

KG_PER_LB = 0.45359237


def mean(values: Sequence[float]) -> float | None:
    """Arithmetic mean; None for no values (never a division by zero)."""
    if not values:
        return None
    return math.fsum(values) / len(values)


def rnd(value: float, places: int = 0) -> float | int:
    """Round half up (2.5 → 3, as people expect), to an int when ``places`` is 0."""
    if not math.isfinite(value):
        return value
    quantum = Decimal(1).scaleb(-places)
    rounded = Decimal(repr(float(value))).quantize(quantum, rounding=ROUND_HALF_UP)
    return int(rounded) if places == 0 else float(rounded)


def finite(values: Iterable[float | None]) -> list[float]:
    """The values that are real numbers (drops None, NaN and infinities)."""
    return [value for value in values if value is not None and math.isfinite(value)]


def slope_per_day(points: Sequence[tuple[datetime.date, float]]) -> float | None:
    """Least-squares slope of ``value`` against the day, in units per day.

    None with fewer than two points or all points on one day.
    """
    if len(points) < 2:
        return None
    origin = points[0][0]
    xs = [float((day - origin).days) for day, _ in points]
    ys = [value for _, value in points]
    mean_x = math.fsum(xs) / len(xs)
    mean_y = math.fsum(ys) / len(ys)
    sxx = math.fsum((x - mean_x) ** 2 for x in xs)
    if sxx == 0:
        return None
    sxy = math.fsum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    return sxy / sxx


def ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator``, None when the denominator is zero or not finite."""
    if not denominator or not math.isfinite(denominator):
        return None
    return numerator / denominator


def fmt(value: float, places: int = 0) -> str:
    """A number as people write it: thousands separators, fixed decimals."""
    return f"{value:,.{places}f}"


def fmt_hours(hours: float) -> str:
    """6.4 → '6 h 24 min'."""
    total_minutes = round(hours * 60)
    whole, minutes = divmod(total_minutes, 60)
    return f"{whole} h {minutes:02d} min" if minutes else f"{whole} h"


def fmt_weight(kg: float, unit: str, places: int = 1) -> str:
    if unit == "lb":
        return f"{fmt(kg / KG_PER_LB, places)} lb"
    return f"{fmt(kg, places)} kg"


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    return f"{count:,} {singular if count == 1 else (plural_form or singular + 's')}"
