"""manage.py import_apple_health USER export.xml|export.zip [--dry-run]."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from healthtrack.models import AuditEvent
from interop.tests.apple_exports import FIXTURE, GeneratedExport, zipped
from interop.tests.test_apple_health_import import later_export
from metrics.models import HealthMetric
from nutrition.models import NutritionLog
from users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def run(*args, **options) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_apple_health", *map(str, args), stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def zip_path(tmp_path) -> Path:
    path = tmp_path / "export.zip"
    path.write_bytes(zipped(FIXTURE.read_bytes()))
    return path


@pytest.mark.parametrize("reference", ["id", "username", "email", "EMAIL"])
def test_imports_for_the_user_named_by_id_username_or_email(user, reference):
    name = {"id": user.pk, "username": user.username, "email": user.email, "EMAIL": user.email.upper()}
    out, _ = run(name[reference], FIXTURE)
    assert HealthMetric.objects.filter(user=user).count() == 17
    assert NutritionLog.objects.filter(user=user).count() == 3
    assert f"export.xml for user {user.pk} ({user.username}): 44 records read" in out
    assert "Metrics: 17 created, 0 updated, 0 already stored, 0 refused." in out
    assert "Nutrition logs: 3 created, 0 updated, 0 already stored, 0 refused." in out
    assert "heart_rate 2" in out and "1 HKQuantityTypeIdentifierActiveEnergyBurned: type not imported" in out


def test_the_second_run_creates_nothing_and_a_later_export_updates_totals(user, zip_path, tmp_path):
    run(user.pk, zip_path)
    event = AuditEvent.objects.get()
    assert (event.actor_id, event.subject_id, event.action, event.resource_type) == (
        None,
        user.pk,
        "create",
        "apple_health_import",
    )
    assert event.path == "manage.py import_apple_health export.zip"
    assert len(event.object_ids) == 20

    out, _ = run(user.pk, zip_path)
    assert "Metrics: 0 created, 0 updated, 17 already stored, 0 refused." in out
    assert HealthMetric.objects.count() == 17

    later = tmp_path / "later.xml"
    later.write_bytes(later_export())
    out, _ = run(user.pk, later)
    assert "Metrics: 2 created, 1 updated, 16 already stored, 0 refused." in out
    assert "Nutrition logs: 0 created, 1 updated, 2 already stored, 0 refused." in out
    assert HealthMetric.objects.get(external_id="hk:steps:2024-03-02").value == 1500


def test_dry_run_reports_what_would_be_stored_and_stores_nothing(user, zip_path):
    out, _ = run(user.pk, zip_path, dry_run=True)
    assert out.startswith("Dry run, nothing stored: export.zip")
    assert "Metrics: 17 would be created, 0 would be updated" in out
    assert not HealthMetric.objects.exists() and not NutritionLog.objects.exists()
    assert not AuditEvent.objects.exists()


def test_progress_shows_records_per_second(user, tmp_path):
    path = GeneratedExport(10_500).write_to(tmp_path / "export.xml")
    _, err = run(user.pk, path, progress="always")
    lines = [line for line in err.split("\r") if line.strip()]
    assert lines[0].startswith("10,000 records  ") and "records/s" in lines[0]
    # 10,500 heart rates and 1,050 step records read; 10,500 + 8 daily step totals stored.
    assert lines[-1].startswith("11,550 records  ") and "metrics: 10,508 new" in lines[-1]
    _, quiet = run(user.pk, path, progress="never")
    assert quiet == ""


@pytest.mark.parametrize(
    ("user_reference", "message"),
    [
        ("nobody@example.org", "No user with id, username or email 'nobody@example.org'."),
        ("999999", "No user with id, username or email '999999'."),
        ("99999999999999999999999", "No user with id, username or email"),
    ],
)
def test_an_unknown_user_is_refused(user_reference, message):
    with pytest.raises(CommandError, match=message):
        run(user_reference, FIXTURE)


def test_a_deactivated_user_is_refused():
    person = UserFactory(is_active=False)
    with pytest.raises(CommandError, match="is deactivated; nothing imported"):
        run(person.pk, FIXTURE)
    assert not HealthMetric.objects.exists()


def test_a_missing_file_or_a_directory_is_refused(user, tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        run(user.pk, tmp_path / "nope.xml")
    with pytest.raises(CommandError, match="not a file"):
        run(user.pk, tmp_path)


def test_a_broken_export_is_refused_and_stores_nothing(user, tmp_path):
    path = GeneratedExport(2_500, broken_after=2_400).write_to(tmp_path / "export.xml")
    with pytest.raises(
        CommandError, match=r"export.xml is not well-formed XML at line \d+.*Nothing was imported"
    ):
        run(user.pk, path)
    assert not HealthMetric.objects.exists()
    assert not AuditEvent.objects.exists()


def test_bad_arguments_exit_non_zero_with_a_message(tmp_path):
    """From a shell: a missing file is exit status 1 and one line on stderr (checked before
    the database is touched); a missing argument is argparse's usage error, status 2."""
    env = {**os.environ, "PYTHONPATH": str(settings.BASE_DIR)}
    manage = [sys.executable, str(settings.BASE_DIR / "manage.py"), "import_apple_health"]
    missing = subprocess.run(
        [*manage, "1", str(tmp_path / "nope.xml")], capture_output=True, text=True, env=env, timeout=60
    )
    assert missing.returncode == 1
    assert f"CommandError: {tmp_path / 'nope.xml'}: no such file." in missing.stderr
    usage = subprocess.run([*manage, "1"], capture_output=True, text=True, env=env, timeout=60)
    assert usage.returncode == 2
    assert "the following arguments are required: path" in usage.stderr
