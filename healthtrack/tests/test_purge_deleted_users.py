"""purge_deleted_users: health data of long-deactivated accounts goes, the audit trail stays."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from goals.models import HealthGoal
from healthtrack.cache import user_data_version
from healthtrack.models import AuditAction, AuditEvent
from healthtrack.retention import PURGE_RESOURCE_TYPE
from insights.models import HealthInsight
from metrics.models import HealthMetric
from nutrition.models import NutritionLog
from users.models import CareTeamMembership, Profile, RevokedSession, User
from users.services import auth_tokens_issue, user_deactivate
from users.tests.factories import ClinicianFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def give_health_data(user: User, clinician: User) -> None:
    HealthMetric.objects.create(user=user, metric_type="steps", value=4000, unit="count", recorded_at=NOW)
    HealthMetric.objects.create(user=user, metric_type="weight", value=80, unit="kg", recorded_at=NOW)
    NutritionLog.objects.create(user=user, meal_type="lunch", calories=600, logged_at=NOW)
    HealthGoal.objects.create(user=user, goal_type="step_count", title="Walk", target_value=8000)
    HealthInsight.objects.create(user=user, code="low_steps", title="Walk more", insight_date=date.today())
    CareTeamMembership.objects.create(patient=user, clinician=clinician)
    RevokedSession.objects.create(sid=f"s-{user.pk}", user=user, expires_at=NOW + timedelta(days=1))
    auth_tokens_issue(user=user)


def deactivate(user: User, days_ago: int) -> None:
    user_deactivate(user_id=user.pk)  # blacklists the outstanding tokens, as the API does
    User.objects.filter(pk=user.pk).update(deactivated_at=NOW - timedelta(days=days_ago))


def health_rows(user: User) -> int:
    return (
        HealthMetric.objects.filter(user=user).count()
        + NutritionLog.objects.filter(user=user).count()
        + HealthGoal.objects.filter(user=user).count()
        + HealthInsight.objects.filter(user=user).count()
        + CareTeamMembership.objects.filter(patient=user).count()
        + RevokedSession.objects.filter(user=user).count()
        + OutstandingToken.objects.filter(user=user).count()
    )


def purge(*args: str) -> str:
    out = io.StringIO()
    call_command("purge_deleted_users", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def people():
    clinician = ClinicianFactory()
    old, recent, active = UserFactory(), UserFactory(), UserFactory()
    for person in (old, recent, active):
        give_health_data(person, clinician)
    deactivate(old, days_ago=100)
    deactivate(recent, days_ago=10)
    # The trail already holds events about the old account; they must survive.
    AuditEvent.objects.create(actor=old, subject=old, action=AuditAction.READ, resource_type="metric")
    AuditEvent.objects.create(actor=clinician, subject=old, action=AuditAction.READ, resource_type="metric")
    return {"old": old, "recent": recent, "active": active, "clinician": clinician}


def test_purge_removes_health_data_and_phi_but_keeps_account_and_audit_trail(people):
    old = people["old"]
    assert health_rows(old) == 8
    audit_before = list(AuditEvent.objects.filter(subject=old).values_list("id", flat=True))
    version_before = user_data_version(old.pk)

    output = purge("--older-than", "30")

    assert health_rows(old) == 0
    assert not BlacklistedToken.objects.filter(token__user=old).exists()
    profile = Profile.objects.get(user=old)
    assert profile.date_of_birth is None and profile.medical_history is None
    assert profile.height_cm is None and profile.gender == "" and profile.occupation == ""
    assert User.objects.filter(pk=old.pk, is_active=False).exists()  # the account row stays
    # Audit rows are never deleted; one more says what the system did.
    assert set(audit_before) <= set(AuditEvent.objects.filter(subject=old).values_list("id", flat=True))
    event = AuditEvent.objects.get(subject=old, action=AuditAction.DELETE, resource_type=PURGE_RESOURCE_TYPE)
    assert event.actor_id is None
    assert event.request_id and event.request_id in output
    assert user_data_version(old.pk) != version_before  # no cached reads of erased data
    assert f"user {old.pk} ({old.username}" in output
    assert "2 metrics" in output and "1 nutrition logs" in output
    assert "Purged 1 account(s)" in output


def test_recently_deactivated_and_active_accounts_are_untouched(people):
    purge("--older-than", "30")
    for name in ("recent", "active"):
        assert health_rows(people[name]) == 8
        assert Profile.objects.get(user=people[name]).medical_history == "Asthma since childhood."
    assert CareTeamMembership.objects.filter(clinician=people["clinician"]).count() == 2
    assert not AuditEvent.objects.filter(subject=people["recent"], action=AuditAction.DELETE).exists()


def test_dry_run_changes_nothing(people):
    audit_count = AuditEvent.objects.count()
    output = purge("--older-than", "30", "--dry-run")
    assert health_rows(people["old"]) == 8
    assert Profile.objects.get(user=people["old"]).medical_history == "Asthma since childhood."
    assert AuditEvent.objects.count() == audit_count
    assert "would be deleted" in output and "nothing changed" in output
    assert f"user {people['old'].pk}" in output
    assert f"user {people['recent'].pk}" not in output


def test_a_second_run_finds_nothing_and_writes_no_event(people):
    purge("--older-than", "30")
    events = AuditEvent.objects.count()
    assert "Nothing to purge." in purge("--older-than", "30")
    assert AuditEvent.objects.count() == events


def test_purged_again_after_reactivation_and_a_new_deactivation(people):
    old = people["old"]
    purge("--older-than", "30")
    User.objects.filter(pk=old.pk).update(is_active=True, deactivated_at=None)
    HealthMetric.objects.create(user=old, metric_type="steps", value=10, unit="count", recorded_at=NOW)
    User.objects.filter(pk=old.pk).update(is_active=False, deactivated_at=timezone.now())
    purge("--older-than", "0")
    assert HealthMetric.objects.filter(user=old).count() == 0
    assert AuditEvent.objects.filter(subject=old, resource_type=PURGE_RESOURCE_TYPE).count() == 2


def test_batches_cover_every_account(people):
    clinician = people["clinician"]
    more = [UserFactory() for _ in range(3)]
    for person in more:
        give_health_data(person, clinician)
        deactivate(person, days_ago=200)
    output = purge("--older-than", "30", "--batch-size", "1")
    assert "Purged 4 account(s)" in output
    for person in [people["old"], *more]:
        assert health_rows(person) == 0
    assert (
        AuditEvent.objects.filter(action=AuditAction.DELETE, resource_type=PURGE_RESOURCE_TYPE).count() == 4
    )


def test_deactivated_clinician_loses_their_patient_links_but_authored_insights_stay(people):
    clinician, patient = people["clinician"], people["active"]
    written = HealthInsight.objects.create(
        user=patient, code="note", title="Keep going", insight_date=date.today(), created_by=clinician
    )
    deactivate(clinician, days_ago=100)
    purge("--older-than", "30")
    assert not CareTeamMembership.objects.filter(clinician=clinician).exists()
    written.refresh_from_db()
    assert written.created_by_id == clinician.pk  # the patient's record keeps its author


def test_bad_arguments_are_refused():
    with pytest.raises(CommandError, match="--older-than"):
        purge("--older-than", "-1")
    with pytest.raises(CommandError):
        purge()
