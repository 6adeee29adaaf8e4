"""Writes and rules for goals."""

from __future__ import annotations

from collections.abc import Iterable


def goals_follow_metrics(*, user_id: int, metric_types: Iterable[str]) -> None:
    """Bring the user's active goals linked to ``metric_types`` up to date with their data.

    Called by the metrics services after every write of those types. Filled in by the
    goals work (issue 3); until then goals do not follow metrics.
    """
