"""import_apple_health: import a person's Apple Health export from a file on the server."""

from __future__ import annotations

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from interop import selectors, services
from interop.apple_health import AppleHealthFormatError

AUDIT_RESOURCE = "apple_health_import"
PROGRESS_EVERY = 10_000


def _plain(text: str) -> str:
    return text  # progress and the summary are not errors: no colour


class Command(BaseCommand):
    help = (
        "Import an Apple Health export (export.xml, or the export.zip the Health app makes) "
        "into a person's metrics and nutrition logs, as POST /api/v1/health-metrics/import/"
        "apple-health does. All or nothing (one transaction); idempotent: running it again "
        "on the same export stores nothing new, and a later export updates the daily totals "
        "it recounts."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("user", help="The person: user id, username or email.")
        parser.add_argument("path", help="Path of export.xml or export.zip.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Read and check everything, report, store nothing."
        )
        parser.add_argument(
            "--progress",
            choices=("auto", "always", "never"),
            default="auto",
            help="Progress line on stderr (records/s): auto shows it only on a terminal.",
        )

    def handle(self, *args, **options):
        path = Path(options["path"])
        if not path.is_file():
            raise CommandError(f"{path}: no such file." if not path.exists() else f"{path}: not a file.")
        user = selectors.user_by_reference(options["user"])
        if user is None:
            raise CommandError(f"No user with id, username or email {options['user']!r}.")
        if not user.is_active:
            raise CommandError(f"User {user.pk} ({user.username}) is deactivated; nothing imported.")
        dry_run = options["dry_run"]
        show_progress = options["progress"] == "always" or (
            options["progress"] == "auto" and self.stderr.isatty()
        )
        started = time.monotonic()

        def progress(result: services.AppleHealthImportResult) -> None:
            records = result.summary.records_read
            rate = records / max(time.monotonic() - started, 1e-9)
            self.stderr.write(
                f"\r{records:,} records  {rate:,.0f} records/s  "
                f"metrics: {result.metrics.created:,} new, {result.metrics.updated:,} updated  "
                f"nutrition: {result.nutrition.created:,} new",
                style_func=_plain,
                ending="",
            )
            self.stderr.flush()

        try:
            result = services.apple_health_import(
                user_id=user.pk,
                source=path,
                dry_run=dry_run,
                on_progress=progress if show_progress else None,
                progress_every=PROGRESS_EVERY,
            )
        except AppleHealthFormatError as error:
            if show_progress:
                self.stderr.write("", style_func=_plain)
            raise CommandError(f"{path}: {error} Nothing was imported.") from None
        except OSError as error:
            raise CommandError(f"{path}: cannot be read ({error.strerror or error}).") from None
        if show_progress:
            progress(result)
            self.stderr.write("", style_func=_plain)
        if not dry_run:
            services.import_audit_record(
                user_id=user.pk,
                resource_type=AUDIT_RESOURCE,
                object_ids=result.object_ids,
                path=f"manage.py import_apple_health {path.name}",
            )
        self._report(result, user=user, path=path, seconds=time.monotonic() - started)

    def _report(self, result: services.AppleHealthImportResult, *, user, path: Path, seconds: float) -> None:
        out = self.stdout
        records = result.summary.records_read
        verb = "would be " if result.dry_run else ""
        out.write(
            f"{'Dry run, nothing stored: ' if result.dry_run else ''}{path.name} for user {user.pk} "
            f"({user.username}): {records:,} records read in {seconds:.1f} s "
            f"({records / seconds if seconds else 0:,.0f} records/s)."
        )
        summary = result.summary.as_dict()
        for title, tally, per_type in (
            ("Metrics", result.metrics, summary["metrics"]),
            ("Nutrition logs", result.nutrition, summary["nutrition"]),
        ):
            out.write(
                f"{title}: {tally.created:,} {verb}created, {tally.updated:,} {verb}updated, "
                f"{tally.duplicates:,} already stored, {tally.error_count:,} refused."
            )
            if per_type:
                out.write("  read: " + ", ".join(f"{name} {count:,}" for name, count in per_type.items()))
            for error in tally.errors:
                out.write(
                    f"  refused {error['type']} at {error['recorded_at']} ({error['external_id']}): "
                    f"{error['field']}: {error['message']}"
                )
            if tally.error_count > len(tally.errors):
                out.write(f"  ... and {tally.error_count - len(tally.errors):,} more refused.")
        if summary["skipped"]:
            out.write("Skipped:")
            for skipped in summary["skipped"]:
                out.write(f"  {skipped['count']:,} {skipped['type']}: {skipped['reason']}")
