"""Token signing is separate from SECRET_KEY, and forged or foreign tokens are refused.

Settings are read once per process, so key rotations are checked across fresh
interpreters: one issues a token and encrypts a value, the next runs with rotated keys.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

ROOT = Path(__file__).resolve().parents[2]

ISSUE = """
import django, json
django.setup()
from rest_framework_simplejwt.tokens import AccessToken
from healthtrack.encryption import encrypt_text
token = AccessToken()
token["user_id"] = "1"
print(json.dumps({"token": str(token), "ciphertext": encrypt_text("penicillin allergy")}))
"""

CHECK = """
import django, json, sys
django.setup()
from rest_framework_simplejwt.exceptions import TokenBackendError
from rest_framework_simplejwt.state import token_backend
from healthtrack.encryption import UndecryptableValue, decrypt_text
given = json.loads(sys.stdin.read())
try:
    token_backend.decode(given["token"])
    token_ok = True
except TokenBackendError:
    token_ok = False
try:
    plaintext = decrypt_text(given["ciphertext"])
except UndecryptableValue:
    plaintext = None
print(json.dumps({"token_valid": token_ok, "plaintext": plaintext}))
"""

KEYS = {
    "SECRET_KEY": "old-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz-0123456789",
    "SECRET_KEY_FALLBACKS": "",
    "FIELD_ENCRYPTION_KEY": "field-salt-0123456789",
    "JWT_SIGNING_KEY": "jwt-signing-key-0123456789-abcdefghijklmnopqrstuvwxyz",
}


def run(script: str, keys: dict[str, str], stdin: str = "") -> dict:
    env = {k: v for k, v in os.environ.items() if k not in KEYS}
    env.update({"DJANGO_SETTINGS_MODULE": "healthtrack.settings", "DEBUG": "true", **keys})
    result = subprocess.run(
        [sys.executable, "-c", script], input=stdin, cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def issued() -> str:
    return json.dumps(run(ISSUE, KEYS))


def test_same_keys_read_back(issued):
    assert run(CHECK, KEYS, issued) == {"token_valid": True, "plaintext": "penicillin allergy"}


def test_rotating_secret_key_alone_keeps_tokens_valid_and_data_readable(issued):
    rotated = {
        **KEYS,
        "SECRET_KEY": "new-secret-key-9876543210-zyxwvutsrqponmlkjihgfedcba-9876543210",
        "SECRET_KEY_FALLBACKS": KEYS["SECRET_KEY"],
    }
    assert run(CHECK, rotated, issued) == {"token_valid": True, "plaintext": "penicillin allergy"}


def test_rotating_the_jwt_key_alone_ends_tokens_but_not_data(issued):
    rotated = {**KEYS, "JWT_SIGNING_KEY": "another-jwt-signing-key-0123456789-abcdefghijklmnop"}
    assert run(CHECK, rotated, issued) == {"token_valid": False, "plaintext": "penicillin allergy"}


# --- Forged and foreign tokens through the API ------------------------------------------


def claims(user, **extra):
    now = timezone.now()
    return {
        "token_type": "access",
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        "iat": int(now.timestamp()),
        "jti": "f" * 32,
        "user_id": str(user.pk),
        "sid": "s" * 32,
        "epoch": user.auth_epoch,
        **extra,
    }


def status_with(token: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client.get("/api/v1/users/me").status_code


@pytest.mark.django_db
def test_a_well_formed_token_with_the_signing_key_is_accepted(user):
    # The control for the refusals below: the same claims, properly signed, work.
    assert status_with(jwt.encode(claims(user), settings.JWT_SIGNING_KEY, algorithm="HS256")) == 200


@pytest.mark.django_db
def test_token_signed_with_secret_key_is_refused(user):
    assert settings.JWT_SIGNING_KEY != settings.SECRET_KEY
    assert status_with(jwt.encode(claims(user), settings.SECRET_KEY, algorithm="HS256")) == 401


@pytest.mark.django_db
@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_token_with_another_algorithm_is_refused(user, algorithm):
    assert status_with(jwt.encode(claims(user), settings.JWT_SIGNING_KEY, algorithm=algorithm)) == 401


@pytest.mark.django_db
def test_unsigned_token_with_valid_claims_is_refused(user):
    assert status_with(jwt.encode(claims(user), None, algorithm="none")) == 401


@pytest.mark.django_db
def test_token_of_another_epoch_is_refused(user):
    token = jwt.encode(claims(user, epoch=user.auth_epoch + 1), settings.JWT_SIGNING_KEY, algorithm="HS256")
    assert status_with(token) == 401


@pytest.mark.django_db
def test_refresh_token_is_not_an_access_token(user):
    token = jwt.encode(claims(user, token_type="refresh"), settings.JWT_SIGNING_KEY, algorithm="HS256")
    assert status_with(token) == 401


@pytest.mark.django_db
def test_expired_refresh_token_is_refused(api_client, user):
    from rest_framework_simplejwt.tokens import RefreshToken

    refresh = RefreshToken()
    refresh["user_id"] = str(user.pk)
    refresh["epoch"] = user.auth_epoch
    refresh.set_exp(lifetime=timedelta(seconds=-60))
    response = api_client.post("/api/v1/auth/token/refresh", {"refresh": str(refresh)}, format="json")
    assert response.status_code == 401
