"""Erase the health data of accounts soft-deleted longer ago than the retention period."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from healthtrack.retention import (
    PurgedAccount,
    user_data_purge,
    user_data_purge_preview,
    users_due_for_purge,
)


class Command(BaseCommand):
    help = (
        "Hard-delete the health data (metrics, nutrition logs, goals, insights, care-team links, "
        "sessions, tokens) and the profile PHI of accounts soft-deleted more than DAYS days ago. "
        "The account row and the audit trail stay; one audit event is written per account. "
        "Safe to run daily: accounts already purged are skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=int,
            required=True,
            metavar="DAYS",
            help="retention period: purge accounts deactivated more than DAYS days ago",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="show what would be purged, change nothing"
        )
        parser.add_argument(
            "--batch-size", type=int, default=200, help="accounts per transaction (default 200)"
        )

    def handle(self, *args, **options):
        days, batch_size, dry_run = options["older_than"], options["batch_size"], options["dry_run"]
        if days < 0:
            raise CommandError("--older-than must be 0 or more days.")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        cutoff = timezone.now() - timedelta(days=days)
        run_id = uuid.uuid4().hex
        verb = "Would purge" if dry_run else "Purging"
        self.stdout.write(
            f"{verb} the health data of accounts deactivated before {cutoff:%Y-%m-%d %H:%M} UTC "
            f"(retention {days} days){' [dry run]' if dry_run else ''}, run {run_id}."
        )
        accounts = rows = 0
        last_id = 0
        while True:
            # Keyset pagination: purged accounts drop out of the query, skipped ones do not
            # repeat, and a dry run (which changes nothing) still moves forward.
            batch = list(users_due_for_purge(cutoff=cutoff).filter(pk__gt=last_id)[:batch_size])
            if not batch:
                break
            last_id = batch[-1].pk
            if dry_run:
                done = user_data_purge_preview(users=batch)
            else:
                done = user_data_purge(users=batch, run_id=run_id)
            for account in done:
                self.stdout.write(self._describe(account, dry_run=dry_run))
            accounts += len(done)
            rows += sum(account.rows for account in done)
        if not accounts:
            self.stdout.write("Nothing to purge.")
        elif dry_run:
            self.stdout.write(
                f"Dry run: {accounts} account(s), {rows:,} rows would be deleted; nothing changed."
            )
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Purged {accounts} account(s): {rows:,} rows deleted, profile PHI erased, "
                    f"{accounts} audit event(s) written; the audit trail is kept."
                )
            )

    @staticmethod
    def _describe(account: PurgedAccount, *, dry_run: bool) -> str:
        deleted = ", ".join(f"{count:,} {label}" for label, count in account.deleted.items() if count)
        return (
            f"  user {account.user_id} ({account.username}, deactivated {account.deactivated_at:%Y-%m-%d}): "
            f"{deleted or 'no rows'}{' would be' if dry_run else ''} deleted; profile PHI "
            f"{'would be ' if dry_run else ''}erased"
        )
