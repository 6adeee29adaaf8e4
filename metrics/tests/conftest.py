"""Fixtures of the metrics tests."""

from __future__ import annotations

import pytest

from users.tests.factories import AdminFactory, CareTeamMembershipFactory, ClinicianFactory


@pytest.fixture
def goal_calls(monkeypatch):
    """Calls to goals_follow_metrics made by metric writes, as (user_id, [types])."""
    calls: list[tuple[int, list[str]]] = []

    def record(*, user_id, metric_types):
        calls.append((user_id, list(metric_types)))

    monkeypatch.setattr("metrics.services.goals_follow_metrics", record)
    return calls


@pytest.fixture
def clinician(user):
    """A clinician on ``user``'s care team."""
    clinician = ClinicianFactory()
    CareTeamMembershipFactory(patient=user, clinician=clinician)
    return clinician


@pytest.fixture
def clinician_client(clinician, make_client):
    return make_client(clinician)


@pytest.fixture
def admin_client(make_client):
    return make_client(AdminFactory())
