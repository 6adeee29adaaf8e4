"""rotate_encryption_keys: write under old keys, rotate, drop the old keys, read."""

from __future__ import annotations

import datetime
import io
import pickle

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.db import connection

from healthtrack.encryption import KeyState, encrypted_fields_by_model, key_state
from users.models import Profile
from users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

OLD_SECRET = "old-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz-0123456789"
NEW_SECRET = "new-secret-key-9876543210-zyxwvutsrqponmlkjihgfedcba-9876543210"
OLD_SALT = "old-field-encryption-salt-0123"
NEW_SALT = "new-field-encryption-salt-4567"


def use_keys(settings, *, secret, secret_fallbacks=(), salts):
    settings.SECRET_KEY = secret
    settings.SECRET_KEY_FALLBACKS = list(secret_fallbacks)
    settings.FIELD_ENCRYPTION_KEY = salts[0]
    settings.FIELD_ENCRYPTION_KEY_FALLBACKS = list(salts[1:])
    settings.SALT_KEY = list(salts)  # what settings.py derives from the two above


def stored() -> dict[int, tuple[str | None, str | None]]:
    """The raw column text of every profile: Fernet tokens, never plaintext."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT user_id, date_of_birth, medical_history FROM users_profile ORDER BY user_id")
        return {row[0]: (row[1], row[2]) for row in cursor.fetchall()}


def readable() -> dict[int, tuple[datetime.date | None, str | None]]:
    return {p.user_id: (p.date_of_birth, p.medical_history) for p in Profile.objects.order_by("user_id")}


def rotate(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("rotate_encryption_keys", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def make_people(count: int = 7) -> dict[int, tuple[datetime.date | None, str | None]]:
    people = {}
    for n in range(count):
        birthday = None if n == 3 else datetime.date(1950 + n, 1 + n, 10 + n)
        history = None if n == 5 else f"Condition number {n}: beta blockers"
        user = UserFactory(profile__date_of_birth=birthday, profile__medical_history=history)
        people[user.pk] = (birthday, history)
    return people


def all_states() -> set[str]:
    return {key_state(token) for row in stored().values() for token in row if token is not None}


def test_encrypted_fields_are_found_through_the_registry():
    found = {
        (model._meta.label, field.name)
        for model, fields in encrypted_fields_by_model().items()
        for field in fields
    }
    assert {("users.Profile", "date_of_birth"), ("users.Profile", "medical_history")} <= found


def test_secret_key_rotation_end_to_end(settings):
    use_keys(settings, secret=OLD_SECRET, salts=[OLD_SALT])
    people = make_people()
    before = stored()

    # Deploy: new SECRET_KEY, the old one as a fallback. Everything still reads.
    use_keys(settings, secret=NEW_SECRET, secret_fallbacks=[OLD_SECRET], salts=[OLD_SALT])
    assert readable() == people
    assert all_states() == {KeyState.STALE}

    out, err = rotate("--batch-size", "3")
    assert err == ""
    assert "Re-encrypting users.Profile: 3/7 rows" in out
    assert "Re-encrypting users.Profile: 7/7 rows, 12 value(s) rewritten" in out
    assert "the old keys can now be removed" in out
    after = stored()
    assert all(after[pk][i] != before[pk][i] for pk in people for i in (0, 1) if before[pk][i] is not None)
    assert all(after[pk][i] is None for pk in people for i in (0, 1) if before[pk][i] is None)

    # Drop the old key: everything still reads, under the new key alone.
    use_keys(settings, secret=NEW_SECRET, salts=[OLD_SALT])
    assert readable() == people
    assert all_states() == {KeyState.CURRENT}


def test_field_encryption_key_rotation_end_to_end(settings):
    use_keys(settings, secret=OLD_SECRET, salts=[OLD_SALT])
    people = make_people(4)

    use_keys(settings, secret=OLD_SECRET, salts=[NEW_SALT, OLD_SALT])
    assert readable() == people
    rotate()

    use_keys(settings, secret=OLD_SECRET, salts=[NEW_SALT])
    assert readable() == people
    assert all_states() == {KeyState.CURRENT}


def test_both_keys_at_once_and_values_written_after_the_deploy(settings):
    use_keys(settings, secret=OLD_SECRET, salts=[OLD_SALT])
    people = make_people(3)
    use_keys(settings, secret=NEW_SECRET, secret_fallbacks=[OLD_SECRET], salts=[NEW_SALT, OLD_SALT])
    people.update(make_people(2))  # written by the new deploy: already current

    out, _ = rotate("--batch-size", "2")
    assert "4 value(s) already under the newest key, 6 under an older key." in out

    use_keys(settings, secret=NEW_SECRET, salts=[NEW_SALT])
    assert readable() == people


def test_dry_run_writes_nothing(settings):
    use_keys(settings, secret=OLD_SECRET, salts=[OLD_SALT])
    make_people(3)
    before = stored()
    use_keys(settings, secret=NEW_SECRET, secret_fallbacks=[OLD_SECRET], salts=[OLD_SALT])
    out, _ = rotate("--dry-run")
    assert "Dry run: 6 value(s) would be re-encrypted; nothing was written." in out
    assert stored() == before


def test_running_again_is_a_no_op(settings):
    use_keys(settings, secret=OLD_SECRET, salts=[OLD_SALT])
    make_people(2)
    use_keys(settings, secret=NEW_SECRET, secret_fallbacks=[OLD_SECRET], salts=[OLD_SALT])
    rotate()
    after_first = stored()
    out, _ = rotate()
    assert "Nothing to re-encrypt" in out
    assert stored() == after_first


def test_refuses_when_a_value_cannot_be_decrypted_and_changes_nothing(settings):
    use_keys(settings, secret=OLD_SECRET, salts=[OLD_SALT])
    readable_people = make_people(3)
    use_keys(settings, secret="a-key-that-was-lost-0123456789-abcdefghijklmnopqrstuvwxyz", salts=[OLD_SALT])
    lost = UserFactory(profile__medical_history="written under a lost key", profile__date_of_birth=None)
    before = stored()

    # The deploy forgot the lost key in the fallbacks.
    use_keys(settings, secret=NEW_SECRET, secret_fallbacks=[OLD_SECRET], salts=[OLD_SALT])
    err = io.StringIO()
    with pytest.raises(
        CommandError, match=r"1 stored value\(s\) cannot be decrypted.*nothing was re-encrypted"
    ):
        call_command("rotate_encryption_keys", stdout=io.StringIO(), stderr=err)
    assert f"cannot decrypt users.Profile pk={lost.pk} field=medical_history" in err.getvalue()
    assert stored() == before  # not even the readable rows were touched
    assert {pk: v for pk, v in readable_without(lost.pk).items()} == readable_people


def readable_without(pk):
    return {p.user_id: (p.date_of_birth, p.medical_history) for p in Profile.objects.exclude(user_id=pk)}


def test_batch_size_must_be_positive():
    with pytest.raises(CommandError, match="batch-size"):
        rotate("--batch-size", "0")


def test_manage_py_exits_non_zero_on_undecryptable_values(settings, tmp_path):
    """The exit status operators' scripts see, checked in a fresh interpreter."""
    import os
    import subprocess
    import sys

    from healthtrack.tests.live import ROOT

    database = tmp_path / "rotation.sqlite3"
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
        "DATABASE_URL": f"sqlite:///{database}",
        "DEBUG": "true",
        "SECRET_KEY": OLD_SECRET,
        "FIELD_ENCRYPTION_KEY": OLD_SALT,
    }

    def manage(*args, **overrides):
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env={**env, **overrides},
            capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip

    assert manage("migrate", "--noinput", "-v", "0").returncode == 0
    create = (
        "from users.tests.factories import UserFactory; "
        "u = UserFactory(profile__medical_history='x'); print(u.pk)"
    )
    created = manage("shell", "-c", create)
    assert created.returncode == 0, created.stderr
    user_id = created.stdout.split()[-1]

    result = manage("rotate_encryption_keys", SECRET_KEY=NEW_SECRET)  # the old key is not a fallback
    assert result.returncode == 1
    assert "cannot be decrypted" in result.stderr
    assert f"pk={user_id} field=date_of_birth" in result.stderr

    result = manage("rotate_encryption_keys", SECRET_KEY=NEW_SECRET, SECRET_KEY_FALLBACKS=OLD_SECRET)
    assert result.returncode == 0, result.stderr
    check = "from users.models import Profile; print(Profile.objects.get().medical_history)"
    assert manage("shell", "-c", check, SECRET_KEY=NEW_SECRET).stdout.split()[-1] == "x"


# --- Nothing encrypted is cached in clear ----------------------------------------------


def cached_values() -> list[bytes]:
    """Every value in the cache as stored bytes (local memory or Redis)."""
    if hasattr(cache, "_cache"):  # LocMemCache: pickled values
        return list(cache._cache.values())
    client = cache.client.get_client()
    return [client.get(key) or b"" for key in client.scan_iter(f"{cache.key_prefix}*")]


def unpickled(raw: bytes):
    try:
        return pickle.loads(raw)  # noqa: S301 - our own cache, in a test
    except Exception:
        return raw


def test_no_phi_is_cached_in_clear(make_client):
    birthday = datetime.date(1961, 7, 23)
    patient = UserFactory(profile__medical_history="Hepatitis C, sofosbuvir", profile__date_of_birth=birthday)
    client = make_client(patient)
    for path in (
        "/api/v1/users/me",
        f"/api/v1/users/{patient.pk}",
        "/api/v1/users",
        "/api/v1/users/me/care-team",
    ):
        assert client.get(path).status_code == 200
    client.patch("/api/v1/users/me", {"medical_history": "Hepatitis C, cured"}, format="json")
    client.get("/api/v1/users/me")

    values = cached_values()
    assert values, "the authentication snapshot should be cached"
    for raw in values:
        assert b"Hepatitis" not in raw and b"sofosbuvir" not in raw and b"1961" not in raw
        value = unpickled(raw)
        text = repr(value)
        assert "Hepatitis" not in text and "1961" not in text
        assert not isinstance(value, Profile | datetime.date)
        if isinstance(value, dict):
            assert not {"medical_history", "date_of_birth"} & set(value)
