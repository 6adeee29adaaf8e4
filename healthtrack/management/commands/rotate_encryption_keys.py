"""Re-encrypt every encrypted value under the newest key (docs/protection.md: runbook).

The newest key is (``SECRET_KEY``, first ``FIELD_ENCRYPTION_KEY``); values under any
older pair (``SECRET_KEY_FALLBACKS`` x ``FIELD_ENCRYPTION_KEY_FALLBACKS``) are read and
written again under it. Three passes:

1. check: every stored value is read; if any cannot be decrypted with the configured
   keys, the command names the rows, writes nothing and exits non-zero;
2. rotate: batches of rows, each locked and rewritten in its own transaction, so the
   command can be interrupted and run again, and never overwrites a concurrent change
   with an older value;
3. verify: nothing is left under an older key, so the old keys can be dropped.
"""

from __future__ import annotations

import contextlib
from collections import Counter

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from healthtrack.encryption import (
    KeyState,
    encrypted_fields_by_model,
    key_state,
    raw_values,
    reencrypt,
    write_raw,
)

MAX_NAMED_ROWS = 50


def _label(model) -> str:
    return model._meta.label


class Command(BaseCommand):
    help = "Re-encrypt every encrypted field value under the newest key, in batches."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500, help="Rows per transaction (default 500).")
        parser.add_argument(
            "--dry-run", action="store_true", help="Only report what would be re-encrypted; write nothing."
        )

    def handle(self, *args, batch_size: int, dry_run: bool, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        self.batch_size = batch_size
        targets = encrypted_fields_by_model()
        salts = settings.SALT_KEY if isinstance(settings.SALT_KEY, list | tuple) else [settings.SALT_KEY]
        secrets = 1 + len(settings.SECRET_KEY_FALLBACKS)
        self.stdout.write(
            "Encrypted fields: "
            + ", ".join(f"{_label(m)}.{f.name}" for m, fields in targets.items() for f in fields)
        )
        self.stdout.write(
            f"Keys: {secrets} SECRET_KEY(s) x {len(salts)} FIELD_ENCRYPTION_KEY(s) = "
            f"{secrets * len(salts)} key pair(s); the newest is (SECRET_KEY, FIELD_ENCRYPTION_KEY)."
        )

        # 1. Check everything before writing anything.
        states, undecryptable = self._survey(targets, "Checking")
        if undecryptable:
            self._refuse(undecryptable)
        self.stdout.write(
            f"{states[KeyState.CURRENT]} value(s) already under the newest key, "
            f"{states[KeyState.STALE]} under an older key."
        )
        if dry_run:
            self.stdout.write(
                f"Dry run: {states[KeyState.STALE]} value(s) would be re-encrypted; nothing was written."
            )
            return
        if states[KeyState.STALE] == 0:
            self.stdout.write(
                self.style.SUCCESS("Nothing to re-encrypt: every value is under the newest key.")
            )
            return

        # 2. Rotate.
        rewritten = 0
        for model, fields in targets.items():
            rewritten += self._rotate_model(model, fields)

        # 3. Verify.
        states, undecryptable = self._survey(targets, "Verifying")
        if undecryptable:
            self._refuse(undecryptable)
        if states[KeyState.STALE]:
            raise CommandError(
                f"{states[KeyState.STALE]} value(s) are still under an older key (written during the run by "
                "a server without the new SECRET_KEY/FIELD_ENCRYPTION_KEY?). Deploy the new keys "
                "everywhere, then run this command again; keep the old keys until it succeeds."
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Re-encrypted {rewritten} value(s). All {states[KeyState.CURRENT]} encrypted value(s) are "
                "under the newest key: the old keys can now be removed from SECRET_KEY_FALLBACKS "
                "and FIELD_ENCRYPTION_KEY_FALLBACKS."
            )
        )

    # --- passes -----------------------------------------------------------------------

    def _batches(self, model, fields, *, lock: bool):
        """Rows in primary-key order, ``batch_size`` at a time; with ``lock`` each batch is
        yielded inside its own transaction with its rows locked."""
        last_pk = None
        while True:
            with transaction.atomic() if lock else contextlib.nullcontext():
                queryset = model._base_manager.order_by("pk")
                if last_pk is not None:
                    queryset = queryset.filter(pk__gt=last_pk)
                if lock:
                    queryset = queryset.select_for_update(of=("self",))
                rows = list(raw_values(queryset, fields, limit=self.batch_size))
                if not rows:
                    return
                yield rows
            last_pk = rows[-1][0]

    def _survey(self, targets, verb: str) -> tuple[Counter, list[tuple[str, object, str]]]:
        states: Counter = Counter()
        undecryptable: list[tuple[str, object, str]] = []
        for model, fields in targets.items():
            total, seen = model._base_manager.count(), 0
            for rows in self._batches(model, fields, lock=False):
                for pk, stored in rows:
                    for attname, token in stored.items():
                        if token is None:
                            continue
                        state = key_state(token)
                        states[state] += 1
                        if state == KeyState.UNDECRYPTABLE:
                            undecryptable.append((_label(model), pk, attname))
                seen += len(rows)
                self.stdout.write(f"{verb} {_label(model)}: {seen}/{total} rows")
        return states, undecryptable

    def _rotate_model(self, model, fields) -> int:
        total, seen, rewritten = model._base_manager.count(), 0, 0
        for rows in self._batches(model, fields, lock=True):
            for pk, stored in rows:
                changes = {
                    attname: reencrypt(token)
                    for attname, token in stored.items()
                    if token is not None and key_state(token) == KeyState.STALE
                }
                if changes:
                    write_raw(model, pk, changes)
                    rewritten += len(changes)
            seen += len(rows)
            self.stdout.write(
                f"Re-encrypting {_label(model)}: {seen}/{total} rows, {rewritten} value(s) rewritten"
            )
        return rewritten

    def _refuse(self, undecryptable) -> None:
        for label, pk, attname in undecryptable[:MAX_NAMED_ROWS]:
            self.stderr.write(f"  cannot decrypt {label} pk={pk} field={attname}")
        if len(undecryptable) > MAX_NAMED_ROWS:
            self.stderr.write(f"  ... and {len(undecryptable) - MAX_NAMED_ROWS} more")
        raise CommandError(
            f"{len(undecryptable)} stored value(s) cannot be decrypted with the configured keys; nothing "
            "was re-encrypted. Add the SECRET_KEY / FIELD_ENCRYPTION_KEY they were written with to "
            "SECRET_KEY_FALLBACKS / FIELD_ENCRYPTION_KEY_FALLBACKS and run again."
        )
