"""scripts/fuzz_api.py (`make fuzz`, CI's schemathesis run) keeps working.

The full run belongs to CI (minutes); here the same machinery runs on two operations for
a few examples: dedicated database, seeding, gunicorn, schemathesis with our hooks, the
status table, and the failure path (a 500 injected into one operation must fail the run
with a reproduction, the other operation must pass).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from healthtrack.tests.live import on_postgresql

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_the_seeded_data_set_is_what_the_hooks_expect():
    from rest_framework_simplejwt.tokens import AccessToken

    from goals.models import HealthGoal
    from insights.models import HealthInsight
    from metrics.models import HealthMetric
    from nutrition.models import NutritionLog
    from scripts.fuzz_api import seed_fuzz_dataset
    from users.models import CareTeamMembership

    # Four past days (six samples each) whatever the time of day: today's samples exist
    # only once their hour has passed, so three days left 18 before 07:00 UTC.
    state = seed_fuzz_dataset(days=4, disposable_sessions=3)
    me, other = state["users"]["self"]["id"], state["users"]["other"]["id"]
    for role, user_id in (("self", me), ("other", other)):
        ids = state["ids"][role]
        assert set(HealthMetric.objects.filter(pk__in=ids["metric"]).values_list("user_id", flat=True)) == {
            user_id
        }
        assert set(
            NutritionLog.objects.filter(pk__in=ids["nutrition_log"]).values_list("user_id", flat=True)
        ) == {user_id}
        assert set(HealthGoal.objects.filter(pk__in=ids["goal"]).values_list("user_id", flat=True)) == {
            user_id
        }
        insights = HealthInsight.objects.filter(pk__in=ids["insight"])
        assert set(insights.values_list("user_id", flat=True)) == {user_id}
        assert (
            insights.filter(created_by__isnull=False).exists() and insights.filter(created_by=None).exists()
        )
        memberships = CareTeamMembership.objects.filter(pk__in=ids["membership"])
        assert set(memberships.values_list("patient_id", flat=True)) == {user_id}
    # The hooks set ids aside for DELETE (the last ten, the last four goals).
    assert len(state["ids"]["self"]["metric"]) > 20 and len(state["ids"]["self"]["goal"]) > 4
    assert str(AccessToken(state["token"])["user_id"]) == str(me)
    clinician = state["users"]["clinicians"][0]["id"]
    assert CareTeamMembership.objects.filter(clinician_id=clinician, patient_id=me).exists()
    assert len(state["disposable"]) == 2 and state["login"]["refresh"]


def test_the_fuzz_script_runs_and_fails_on_a_server_error(tmp_path):
    """One operation passes (GET /users/me, as the seeded person); GET /health has its
    answers turned into 500s by the hooks' self-test switch: the run must exit non-zero
    and print the failure with a curl line to reproduce it."""
    env = {**os.environ, "FUZZ_SELFTEST_SERVER_ERROR": "GET /health"}
    command = [
        sys.executable, "scripts/fuzz_api.py",
        "--include-operation-id", "api_v1_users_me_retrieve",
        "--include-operation-id", "health_retrieve",
        "--phases", "fuzzing", "--max-examples", "3",
        "--server-workers", "1", "--workers", "1", "--disposable-sessions", "2",
        "--report-dir", str(tmp_path / "report"), "--no-cache",
    ]  # fmt: skip
    if on_postgresql():  # its own database, beside the test database
        database = os.environ["DATABASE_URL"].rsplit("/", 1)[1].split("?")[0]
        command += ["--database-name", f"{database}_smoke_fuzz"]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "GET /health" in output and "Server error" in output, output
    assert "Reproduce with:" in output and "curl -X GET" in output, output
    assert "1 passed" in output, output  # GET /users/me
    table = output.split("responses per operation", 1)[1]
    me_line = next(line for line in table.splitlines() if "GET /api/v1/users/me " in line)
    assert "200 x" in me_line, output
    assert "fuzz: FAILED" in output
    assert list((tmp_path / "report").glob("junit-*.xml"))
