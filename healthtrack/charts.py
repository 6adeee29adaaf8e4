"""Server-side SVG charts: no CDN, no JavaScript, readable in any browser and printable.

``line_chart`` draws one or more daily series over a fixed window of days: a polyline
per run of consecutive days with data, a ``<circle>`` per data point (with a
``<title>`` tooltip), horizontal grid lines with labels and an optional dashed
reference line (a target or threshold).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from html import escape

from django.utils.safestring import SafeString, mark_safe

WIDTH = 680
HEIGHT = 190
MARGIN_LEFT = 52
MARGIN_RIGHT = 14
MARGIN_TOP = 14
MARGIN_BOTTOM = 26
PALETTE = ("#2f6f9f", "#c0392b", "#27864a", "#8e44ad")


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[date, float]]
    color: str | None = None


@dataclass(frozen=True)
class ReferenceLine:
    value: float
    label: str


@dataclass
class _Scale:
    low: float
    high: float
    ticks: list[float] = field(default_factory=list)


def _nice_step(span: float, count: int) -> float:
    raw = span / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for multiple in (1, 2, 2.5, 5, 10):
        if raw <= multiple * magnitude:
            return multiple * magnitude
    return 10 * magnitude


def _scale(values: Sequence[float], reference: ReferenceLine | None, decimals: int) -> _Scale:
    candidates = list(values) + ([reference.value] if reference else [])
    low, high = min(candidates), max(candidates)
    if math.isclose(low, high):
        pad = max(abs(low) * 0.05, 1.0)
        low, high = low - pad, high + pad
    # Never finer than the labels can show, or two grid lines would read the same.
    step = max(_nice_step(high - low, 4), 10.0**-decimals)
    low = math.floor(low / step) * step
    high = math.ceil(high / step) * step
    ticks = []
    tick = low
    while tick <= high + step / 1000:
        ticks.append(round(tick, 6))
        tick += step
    return _Scale(low, high, ticks)


def _format(value: float, decimals: int) -> str:
    return f"{value:,.{decimals}f}"


def line_chart(
    *,
    title: str,
    unit: str,
    start: date,
    end: date,
    series: Sequence[Series],
    reference: ReferenceLine | None = None,
    decimals: int = 0,
) -> SafeString:
    """An SVG line chart of daily values from ``start`` to ``end`` (inclusive)."""
    days = (end - start).days + 1
    all_values = [value for s in series for _, value in s.points]
    label = f"{title} ({unit}), {start:%d %b %Y} to {end:%d %b %Y}"
    parts = [
        f'<svg class="ht-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="100%" role="img" aria-label="{escape(label)}" data-points="{len(all_values)}">',
        f"<title>{escape(label)}</title>",
    ]
    if not all_values:
        parts.append(
            f'<text class="ht-chart-empty" x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">'
            f"No {escape(title.lower())} recorded in these {days} days</text></svg>"
        )
        return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped

    scale = _scale(all_values, reference, decimals)
    plot_width = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_height = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM

    def x_of(day: date) -> float:
        offset = (day - start).days
        return MARGIN_LEFT + (plot_width * offset / (days - 1) if days > 1 else plot_width / 2)

    def y_of(value: float) -> float:
        return MARGIN_TOP + plot_height * (1 - (value - scale.low) / (scale.high - scale.low))

    for tick in scale.ticks:
        y = y_of(tick)
        parts.append(
            f'<line class="ht-grid" x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{y:.1f}" '
            f'y2="{y:.1f}" stroke="#ddd" stroke-width="1"/>'
            f'<text x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#666">{escape(_format(tick, decimals))}</text>'
        )
    for day in (start, start + timedelta(days=(days - 1) // 2), end):
        parts.append(
            f'<text x="{x_of(day):.1f}" y="{HEIGHT - 8}" text-anchor="middle" font-size="11" '
            f'fill="#666">{day:%d %b}</text>'
        )
    if reference is not None:
        y = y_of(reference.value)
        parts.append(
            f'<line class="ht-reference" x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{y:.1f}" '
            f'y2="{y:.1f}" stroke="#e67e22" stroke-dasharray="5 4" stroke-width="1.5"/>'
            f'<text x="{WIDTH - MARGIN_RIGHT}" y="{y - 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#e67e22">{escape(reference.label)}</text>'
        )

    for index, one in enumerate(series):
        color = one.color or PALETTE[index % len(PALETTE)]
        points = sorted(p for p in one.points if start <= p[0] <= end)
        runs: list[list[tuple[date, float]]] = []
        for point in points:
            if runs and (point[0] - runs[-1][-1][0]).days == 1:
                runs[-1].append(point)
            else:
                runs.append([point])
        for run in runs:
            if len(run) > 1:
                coordinates = " ".join(f"{x_of(d):.1f},{y_of(v):.1f}" for d, v in run)
                parts.append(
                    f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{coordinates}"/>'
                )
        for day, value in points:
            tip = f"{day:%a %d %b}: {_format(value, decimals)} {unit} ({one.label})"
            parts.append(
                f'<circle class="ht-point" data-series="{escape(one.label)}" cx="{x_of(day):.1f}" '
                f'cy="{y_of(value):.1f}" r="3" fill="{color}"><title>{escape(tip)}</title></circle>'
            )
    if len(series) > 1:
        x = MARGIN_LEFT + 6
        for index, one in enumerate(series):
            color = one.color or PALETTE[index % len(PALETTE)]
            parts.append(
                f'<rect x="{x}" y="{MARGIN_TOP - 10}" width="10" height="10" fill="{color}"/>'
                f'<text x="{x + 14}" y="{MARGIN_TOP - 1}" font-size="11">{escape(one.label)}</text>'
            )
            x += 24 + 7 * len(one.label)
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped
