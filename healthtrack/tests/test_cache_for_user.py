"""cached_for_user: one round trip on a hit, fresh after a bump, refresh on demand."""

from unittest import mock

import pytest
from django.core.cache import cache

from healthtrack.cache import cached_for_user, user_data_version_bump


def _cached(compute, *, refresh=False, parts=(30,)):
    return cached_for_user(7, "things", parts, 60, compute, refresh=refresh)


def test_second_call_is_a_hit_in_one_round_trip():
    compute = mock.Mock(return_value={"n": 1})
    assert _cached(compute) == ({"n": 1}, False)
    with (
        mock.patch.object(cache, "get_many", wraps=cache.get_many) as get_many,
        mock.patch("healthtrack.cache.user_data_version") as version,
    ):
        assert _cached(compute) == ({"n": 1}, True)
    get_many.assert_called_once()  # the version and the entry together
    version.assert_not_called()
    assert compute.call_count == 1


@pytest.mark.django_db
def test_a_bump_makes_the_next_call_fresh():
    compute = mock.Mock(side_effect=[1, 2])
    _cached(compute)
    user_data_version_bump(user_id=7)
    assert _cached(compute) == (2, False)
    assert _cached(compute) == (2, True)


def test_refresh_recomputes_and_replaces():
    compute = mock.Mock(side_effect=[1, 2])
    _cached(compute)
    assert _cached(compute, refresh=True) == (2, False)
    assert _cached(compute) == (2, True)


def test_parts_are_separate_entries():
    assert _cached(lambda: "a", parts=(7,)) == ("a", False)
    assert _cached(lambda: "b", parts=(30,)) == ("b", False)
    assert _cached(lambda: "x", parts=(7,)) == ("a", True)


def test_cache_unavailable_computes_every_time():
    compute = mock.Mock(side_effect=[1, 2])
    with mock.patch("healthtrack.cache.user_data_version", return_value=None):
        assert _cached(compute) == (1, False)
        assert _cached(compute) == (2, False)


@pytest.mark.django_db(transaction=True)  # real commits: Django runs on_commit itself
def test_a_write_bumps_once_when_its_transaction_commits_and_nothing_stale_is_served():
    from django.db import transaction

    from healthtrack.cache import user_data_version

    compute = mock.Mock(side_effect=["before the write", "after the write"])
    before = user_data_version(7)
    with transaction.atomic():
        user_data_version_bump(user_id=7)
        assert user_data_version(7) == before  # not yet: the write is not committed
        # A read while the write commits stores what it saw under the version it read...
        assert _cached(compute) == ("before the write", False)
    assert user_data_version(7) == before + 1  # one bump, at the commit
    # ...which the bump has left behind.
    assert _cached(compute) == ("after the write", False)


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_write_does_not_bump():
    from django.db import transaction

    from healthtrack.cache import user_data_version

    def failing_write():
        with transaction.atomic():
            user_data_version_bump(user_id=7)
            raise RuntimeError("the write fails")

    before = user_data_version(7)
    with pytest.raises(RuntimeError):
        failing_write()
    assert user_data_version(7) == before
