"""Production settings, checked in fresh interpreters (settings are read once)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "test-production-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFG",
    "FIELD_ENCRYPTION_KEY": "test-production-field-key-0123456789",
    "JWT_SIGNING_KEY": "test-production-jwt-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    "ALLOWED_HOSTS": "healthtrack.example.com,testserver",
    "REDIS_URL": "redis://127.0.0.1:6379/15",
}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in PRODUCTION and k != "SECURE_TRANSPORT"}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("missing", ["SECRET_KEY", "FIELD_ENCRYPTION_KEY"])
def test_production_refuses_to_start_without_keys(missing):
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert f"{missing} must be set when DEBUG is off" in result.stderr


def test_deploy_check_is_clean_under_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_deploy_check_warns_without_jwt_key():
    env = {k: v for k, v in PRODUCTION.items() if k != "JWT_SIGNING_KEY"}
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode != 0
    assert "healthtrack.W001" in result.stderr


PRINT_SECURITY = (
    "from django.conf import settings as s; "
    "print(s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS > 0)"
)


def test_secure_transport_defaults_on_in_production():
    result = manage("shell", "-c", PRINT_SECURITY, env=PRODUCTION)
    assert result.stdout.split()[-4:] == ["True", "True", "True", "True"], result.stderr


def test_secure_transport_false_switches_all_three_off():
    result = manage("shell", "-c", PRINT_SECURITY, env={**PRODUCTION, "SECURE_TRANSPORT": "false"})
    assert result.stdout.split()[-4:] == ["False", "False", "False", "False"], result.stderr


@pytest.mark.django_db
def test_plain_http_rig_serves_api_and_admin_login(settings, api_client, client):
    """Production settings with SECURE_TRANSPORT=false answer over plain HTTP."""
    settings.DEBUG = False
    settings.SECURE_SSL_REDIRECT = False
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    assert api_client.get("/health").status_code == 200
    assert client.get("/admin/login/").status_code == 200


@pytest.mark.django_db
def test_secure_transport_redirects_plain_http(settings, client):
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/api/v1/users/me")
    assert response.status_code == 301
    assert response["Location"].startswith("https://")
