"""The insights engine: pure functions from one person's data to ranked recommendations.

``features`` holds the plain data (dataclasses), ``rules`` the rules, ``ranking`` the
scoring and ``recommend``. Nothing here touches the database.
"""

from insights.engine.features import DayValue, GoalFact, NutritionDay, ProfileFacts, UserFeatures
from insights.engine.ranking import MAX_RECOMMENDATIONS, rank, recommend
from insights.engine.rules import RULES, Recommendation

__all__ = [
    "MAX_RECOMMENDATIONS",
    "RULES",
    "DayValue",
    "GoalFact",
    "NutritionDay",
    "ProfileFacts",
    "Recommendation",
    "UserFeatures",
    "rank",
    "recommend",
]
