"""Field encryption for PHI, on django-fernet-encrypted-fields.

The library's keys are ``PBKDF2(secret, salt)`` for every ``SECRET_KEY`` (newest first,
then ``SECRET_KEY_FALLBACKS``) and every salt in ``SALT_KEY`` (``FIELD_ENCRYPTION_KEY``
first, then ``FIELD_ENCRYPTION_KEY_FALLBACKS``); values are written with the first and
read with any of them. These subclasses keep that format and change two things:

* the derived keys are shared by every field and follow the settings, instead of being
  derived once per field and frozen for the life of the process;
* a value no key can decrypt raises ``UndecryptableValue`` instead of being handed back
  as ciphertext (the library's behaviour), which would show garbage as someone's
  medical history and hide a lost key.
"""

from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from django.conf import settings
from encrypted_fields import fields as library

_KDF_ITERATIONS = 100_000  # the library's; changing it would orphan stored values


class UndecryptableValue(Exception):
    """A stored value that none of the configured keys can decrypt."""


@functools.lru_cache(maxsize=64)
def _derive_key(secret: str, salt: str) -> bytes:
    kdf = PBKDF2HMAC(
        algorithm=hashes.SHA256(), length=32, salt=salt.encode("utf-8"), iterations=_KDF_ITERATIONS
    )
    return base64.urlsafe_b64encode(kdf.derive(secret.encode("utf-8")))


@functools.lru_cache(maxsize=8)
def _fernet(secrets: tuple[str, ...], salts: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(_derive_key(secret, salt)) for secret in secrets for salt in salts])


def current_fernet() -> MultiFernet:
    """Encrypts with the newest (SECRET_KEY, salt) pair, decrypts with any configured one."""
    salts = settings.SALT_KEY if isinstance(settings.SALT_KEY, list | tuple) else [settings.SALT_KEY]
    secrets = (settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ()))
    return _fernet(tuple(secrets), tuple(salts))


def encrypt_text(plaintext: str) -> str:
    return current_fernet().encrypt(plaintext.encode("utf-8")).decode("utf-8")


def decrypt_text(token: str) -> str:
    try:
        return current_fernet().decrypt(token.encode("utf-8")).decode("utf-8")
    except (InvalidToken, UnicodeEncodeError) as error:
        raise UndecryptableValue(
            "A stored value cannot be decrypted with the configured keys: is the "
            "SECRET_KEY or FIELD_ENCRYPTION_KEY it was written with missing from the "
            "fallbacks?"
        ) from error


class _SharedKeysMixin:
    @property
    def f(self) -> MultiFernet:
        return current_fernet()

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        return self._plain_to_python(decrypt_text(value))

    def to_python(self, value):
        # Values reaching to_python come from forms, serializers or fixtures and are
        # plaintext; decryption happens only in from_db_value.
        return self._plain_to_python(value)

    def _plain_to_python(self, value):
        return super(library.EncryptedFieldMixin, self).to_python(value)


class EncryptedTextField(_SharedKeysMixin, library.EncryptedTextField):
    pass


class EncryptedDateField(_SharedKeysMixin, library.EncryptedDateField):
    pass


# --- Key rotation ---------------------------------------------------------------------
#
# ``manage.py rotate_encryption_keys`` re-encrypts stored values under the newest key
# pair. The functions below work on the raw column text (Fernet tokens), never on
# decrypted model instances, so a rotation cannot change what a value says and never
# re-encrypts a value twice.


def newest_fernet() -> Fernet:
    """The key every new value is written with: (SECRET_KEY, FIELD_ENCRYPTION_KEY)."""
    salts = settings.SALT_KEY if isinstance(settings.SALT_KEY, list | tuple) else [settings.SALT_KEY]
    return Fernet(_derive_key(settings.SECRET_KEY, salts[0]))


class KeyState:
    CURRENT = "current"  # encrypted under the newest key
    STALE = "stale"  # readable, but under an older key: to re-encrypt
    UNDECRYPTABLE = "undecryptable"  # no configured key opens it


def key_state(token: str) -> str:
    """Which configured key, if any, opens this stored value."""
    raw = token.encode("utf-8")
    try:
        newest_fernet().decrypt(raw)
    except InvalidToken:
        pass
    else:
        return KeyState.CURRENT
    try:
        current_fernet().decrypt(raw)
    except InvalidToken:
        return KeyState.UNDECRYPTABLE
    return KeyState.STALE


def reencrypt(token: str) -> str:
    """The same plaintext, encrypted under the newest key."""
    return current_fernet().rotate(token.encode("utf-8")).decode("utf-8")


def encrypted_fields_by_model() -> dict[type, list]:
    """Every model with encrypted columns, found through the app registry.

    Any field built on django-fernet-encrypted-fields counts, ours or the library's own
    (they share the key format). Proxy models share their concrete model's table.
    """
    from django.apps import apps

    found: dict[type, list] = {}
    for model in apps.get_models():
        if model._meta.proxy:
            continue
        fields = [f for f in model._meta.concrete_fields if isinstance(f, library.EncryptedFieldMixin)]
        if fields:
            found[model] = fields
    return found


def raw_values(queryset, fields, *, limit: int | None = None):
    """``queryset`` as ``(pk, {attname: stored text})`` rows, without decrypting."""
    from django.db.models import TextField
    from django.db.models.functions import Cast

    aliases = {f"_stored_{field.attname}": field.attname for field in fields}
    annotated = queryset.annotate(
        **{alias: Cast(attname, output_field=TextField()) for alias, attname in aliases.items()}
    )
    rows = annotated.values_list("pk", *aliases)
    for pk, *stored in rows[:limit] if limit is not None else rows:
        yield pk, dict(zip(aliases.values(), stored, strict=True))


def write_raw(model, pk, values: dict[str, str]) -> None:
    """Store already-encrypted text as is (the field would encrypt it again)."""
    from django.db.models import TextField, Value

    model._base_manager.filter(pk=pk).update(
        **{attname: Value(token, output_field=TextField()) for attname, token in values.items()}
    )
