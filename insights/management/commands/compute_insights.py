"""compute_insights: store today's ranked recommendations of every active person."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from insights import selectors
from insights.services import DEFAULT_WINDOW_DAYS, MAX_WINDOW_DAYS, ComputeResult, insights_compute_batch

DEFAULT_BATCH_SIZE = 500
MAX_BATCH_SIZE = 10_000
MAX_FAILED_IDS_SHOWN = 20


def _plain(text: str) -> str:
    return text  # progress is not an error: no red


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` → ``(K, N)`` with ``0 <= K < N``."""
    try:
        index_text, count_text = text.split("/")
        index, count = int(index_text), int(count_text)
    except ValueError:
        raise CommandError(f"--shard must look like K/N (e.g. 0/4), not {text!r}.") from None
    if count < 1 or not 0 <= index < count:
        raise CommandError(f"--shard {text}: need N >= 1 and 0 <= K < N.")
    return index, count


class Command(BaseCommand):
    help = (
        "Compute the top five recommendations of every active person (or --user ...) from "
        "their last --days local days and store them as insights for their local today. "
        "Idempotent: a second run on the same data changes nothing, and insights already "
        "read stay read."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--user",
            type=int,
            nargs="+",
            action="extend",
            dest="users",
            metavar="ID",
            help="Only these users.",
        )
        parser.add_argument(
            "--days",
            type=int,
            default=DEFAULT_WINDOW_DAYS,
            help=f"Window in days (1-{MAX_WINDOW_DAYS}, default {DEFAULT_WINDOW_DAYS}).",
        )
        parser.add_argument(
            "--since-active",
            type=int,
            metavar="DAYS",
            help="Skip people with no metric or meal recorded in the last DAYS days.",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help=f"Users per batch (1-{MAX_BATCH_SIZE}, default {DEFAULT_BATCH_SIZE}).",
        )
        parser.add_argument(
            "--shard", metavar="K/N", help="Only users with id %% N == K, so N machines can share a run."
        )
        parser.add_argument("--dry-run", action="store_true", help="Compute and report; write nothing.")
        parser.add_argument(
            "--progress",
            choices=("auto", "always", "never"),
            default="auto",
            help="Progress line on stderr: auto shows it only on a terminal.",
        )

    def _check(self, options) -> None:
        if not 1 <= options["days"] <= MAX_WINDOW_DAYS:
            raise CommandError(f"--days must be between 1 and {MAX_WINDOW_DAYS}, not {options['days']}.")
        if not 1 <= options["batch_size"] <= MAX_BATCH_SIZE:
            raise CommandError(
                f"--batch-size must be between 1 and {MAX_BATCH_SIZE}, not {options['batch_size']}."
            )
        if options["since_active"] is not None and options["since_active"] < 1:
            raise CommandError(f"--since-active must be at least 1 day, not {options['since_active']}.")
        if options["users"] and any(user_id < 1 for user_id in options["users"]):
            raise CommandError("--user ids must be positive integers.")

    def handle(self, *args, **options):
        self._check(options)
        shard = parse_shard(options["shard"]) if options["shard"] else None
        requested = sorted(set(options["users"] or []))
        started = time.monotonic()
        now = timezone.now()
        user_ids = selectors.insight_compute_user_ids(
            user_ids=requested or None, since_active_days=options["since_active"], shard=shard, now=now
        )
        if requested and not options["since_active"] and not shard:
            unknown = sorted(set(requested) - set(user_ids))
            if unknown:
                raise CommandError(f"No active user with id {', '.join(map(str, unknown))}.")

        show_progress = options["progress"] == "always" or (
            options["progress"] == "auto" and self.stderr.isatty()
        )
        dry_run = options["dry_run"]
        show_codes = dry_run and (bool(requested) or options["verbosity"] >= 2)
        total = ComputeResult()
        batch_size = options["batch_size"]
        for start in range(0, len(user_ids), batch_size):
            batch = user_ids[start : start + batch_size]
            result = insights_compute_batch(user_ids=batch, days=options["days"], now=now, dry_run=dry_run)
            total.add(result)
            for user_id, reason in result.failed.items():
                self.stderr.write(f"user {user_id}: skipped, {reason}")
            if show_codes:
                for user_id in batch:
                    if user_id in result.codes:
                        self.stdout.write(f"user {user_id}: {', '.join(result.codes[user_id]) or '(none)'}")
            if show_progress:
                done = min(start + batch_size, len(user_ids))
                elapsed = max(time.monotonic() - started, 1e-9)
                self.stderr.write(
                    f"\r{done:,}/{len(user_ids):,} users  {done / elapsed:,.0f} users/s  "
                    f"{total.created:,} created  {total.updated:,} updated",
                    style_func=_plain,
                    ending="",
                )
                self.stderr.flush()
        if show_progress and user_ids:
            self.stderr.write("", style_func=_plain)

        seconds = time.monotonic() - started
        verb = "would be " if dry_run else ""
        self.stdout.write(
            f"{'Dry run: ' if dry_run else ''}{total.users:,} users in {seconds:.1f} s "
            f"({total.users / seconds if seconds else 0:,.0f} users/s); insights: "
            f"{total.created:,} {verb}created, {total.updated:,} {verb}updated, "
            f"{total.unchanged:,} unchanged, {total.removed:,} {verb}removed."
        )
        if total.failed:
            ids = sorted(total.failed)
            shown = ", ".join(map(str, ids[:MAX_FAILED_IDS_SHOWN])) + (
                " ..." if len(ids) > MAX_FAILED_IDS_SHOWN else ""
            )
            raise CommandError(
                f"{len(ids)} user(s) could not be processed (details logged above): {shown}", returncode=2
            )
