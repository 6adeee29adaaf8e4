"""First run on an empty database: a demo superuser, a demo person and demo people."""

from __future__ import annotations

import secrets

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from users.models import User
from users.services import user_register

DEMO_PEOPLE = 12
DEMO_DAYS = 30


class Command(BaseCommand):
    help = (
        "On an empty database only: create a demo superuser and a demo person, give the demo "
        "person 30 days of data, seed 12 more demo people, and print the credentials. Does "
        "nothing when any account exists."
    )

    def handle(self, *args, **options):
        if User.objects.exists():
            self.stdout.write("Database already has accounts; demo data not created.")
            return
        admin_password = secrets.token_urlsafe(12)
        demo_password = secrets.token_urlsafe(12)
        with transaction.atomic():
            User.objects.create_superuser("admin", "admin@healthtrack.local", admin_password)
            demo = user_register(
                email="demo@healthtrack.local",
                username="demo",
                password=demo_password,
                first_name="Dana",
                last_name="Demo",
                timezone="Europe/London",
                height_cm=172.0,
                gender="female",
                occupation="Office worker",
            )
            call_command(
                "seed_demo_data",
                "--users", str(DEMO_PEOPLE), "--days", str(DEMO_DAYS),
                "--include-user", str(demo.pk), "--include-persona", "sedentary_office_worker",
                stdout=self.stdout, verbosity=options["verbosity"],
            )  # fmt: skip
        self.stdout.write(self.style.SUCCESS("Demo data created. Sign in with:"))
        self.stdout.write(f"  admin (Django admin, /admin/): username 'admin', password '{admin_password}'")
        self.stdout.write(f"  demo person (API):            username 'demo',  password '{demo_password}'")
        self.stdout.write("These passwords are shown once; `manage.py changepassword` resets them.")
