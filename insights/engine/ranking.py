"""Ranking: score = severity weight * confidence (data coverage) * relevance (goals).

Relevance is 1, raised by the priority of the most important active goal the finding
is about (a sleep finding for someone with a high-priority sleep goal outranks an
equally severe, equally supported one they have no goal for). Equal scores are ordered
by code, so the same data always gives the same list.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from insights.engine.features import GoalFact, UserFeatures
from insights.engine.numbers import rnd
from insights.engine.rules import RULES, Recommendation, goal_metric

SEVERITY_WEIGHT = {"low": 1.0, "medium": 2.0, "high": 3.0}
PRIORITY_BOOST = {"low": 0.1, "medium": 0.25, "high": 0.5}
MAX_RECOMMENDATIONS = 5


def _goal_keys(goal: GoalFact) -> set[str]:
    return {key for key in (goal.goal_type, goal_metric(goal), f"goal:{goal.id}") if key}


def relevance(candidate: Recommendation, goals: Iterable[GoalFact]) -> tuple[float, GoalFact | None]:
    """``(relevance, the goal behind it)``: 1 + the boost of the highest-priority goal
    the candidate is about, or ``(1, None)``."""
    best: tuple[float, GoalFact] | None = None
    for goal in goals:
        if _goal_keys(goal) & candidate.goal_links:
            boost = PRIORITY_BOOST.get(goal.priority, 0.0)
            if best is None or boost > best[0] or (boost == best[0] and goal.id < best[1].id):
                best = (boost, goal)
    if best is None:
        return 1.0, None
    return 1.0 + best[0], best[1]


def _goal_sentence(goal: GoalFact) -> str:
    if goal.title:
        return f" It matters for your {goal.priority}-priority goal “{goal.title}”."
    return f" It matters for your {goal.priority}-priority {goal.goal_type.replace('_', ' ')} goal."


def rank(
    candidates: Sequence[Recommendation],
    goals: Sequence[GoalFact] = (),
    *,
    limit: int = MAX_RECOMMENDATIONS,
) -> list[Recommendation]:
    """Score, order (score desc, then code) and number the top ``limit`` candidates."""
    scored = []
    for candidate in candidates:
        weight, goal = relevance(candidate, goals)
        score = rnd(SEVERITY_WEIGHT[candidate.severity] * candidate.confidence * weight, 3)
        reasoning = candidate.reasoning
        if goal is not None and candidate.code != "goal_off_track":
            reasoning += _goal_sentence(goal)
        scored.append(replace(candidate, score=score, reasoning=reasoning))
    scored.sort(key=lambda item: (-item.score, item.code))
    return [replace(item, rank=position) for position, item in enumerate(scored[:limit], start=1)]


def recommend(features: UserFeatures, *, limit: int = MAX_RECOMMENDATIONS) -> list[Recommendation]:
    """Run every rule over one person's features and return the ranked top ``limit``."""
    candidates = [candidate for rule in RULES if (candidate := rule(features)) is not None]
    return rank(candidates, features.goals, limit=limit)
