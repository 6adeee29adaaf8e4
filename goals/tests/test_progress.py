"""The pure rules: progress and "target reached", for goals going down and up."""

import pytest

from goals.services import DOWN, EITHER, UP, goal_direction, goal_progress_percent, goal_target_reached


def progress(goal_type, start, current, target):
    return goal_progress_percent(
        goal_type=goal_type, start_value=start, current_value=current, target_value=target
    )


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        (90, 0.0),  # at the start
        (85, 50.0),  # half way down
        (82.5, 75.0),
        (92, 0.0),  # gained weight: 0, not negative
        (80, 100.0),  # reached
        (78, 100.0),  # past the target: capped
    ],
)
def test_weight_loss_progress_goes_down(current, expected):
    assert progress("weight_loss", 90, current, 80) == expected


@pytest.mark.parametrize(
    ("current", "expected"),
    [(4000, 0.0), (7000, 50.0), (3000, 0.0), (10_000, 100.0), (12_500, 100.0), (9999, 99.9)],
)
def test_step_goal_progress_goes_up(current, expected):
    assert progress("step_count", 4000, current, 10_000) == expected


def test_custom_goal_takes_its_direction_from_start_and_target():
    assert progress("custom", 10, 7, 4) == 50.0
    assert progress("custom", 4, 7, 10) == 50.0
    assert goal_direction(goal_type="custom", start_value=10, target_value=4) == DOWN
    assert goal_direction(goal_type="custom", start_value=4, target_value=10) == UP


def test_start_equal_to_target_never_divides_by_zero():
    assert goal_direction(goal_type="custom", start_value=5, target_value=5) == EITHER
    assert progress("custom", 5, 5, 5) == 100.0
    assert progress("custom", 5, 6, 5) == 0.0
    assert progress("better_nutrition", 0, 0, 0) == 100.0


def test_no_data_is_no_progress():
    assert progress("weight_loss", 90, None, 80) is None
    assert progress("custom", None, None, 10) is None
    assert progress("custom", None, 5, 10) is None  # no start: unknown
    assert progress("step_count", None, 12_000, 10_000) == 100.0  # but reached is reached


@pytest.mark.parametrize(
    ("goal_type", "start", "current", "target", "reached"),
    [
        ("weight_loss", 90, 80, 80, True),
        ("weight_loss", 90, 80.1, 80, False),
        ("weight_loss", None, 79, 80, True),  # first value already below the target
        ("weight_gain", 60, 65, 65, True),
        ("weight_gain", 60, 64, 65, False),
        ("step_count", 4000, 10_000, 10_000, True),
        ("better_sleep", 6, 7.5, 8, False),
        ("stress_reduction", 80, 64, 65, True),
        ("custom", 10, 4, 4, True),
        ("custom", 10, 5, 4, False),
        ("custom", None, 4.0, 4, True),
        ("custom", None, 3, 4, False),
        ("weight_loss", 90, None, 80, False),
    ],
)
def test_target_reached(goal_type, start, current, target, reached):
    assert (
        goal_target_reached(
            goal_type=goal_type, start_value=start, current_value=current, target_value=target
        )
        is reached
    )
