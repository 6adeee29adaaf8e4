"""Create a staff account in the clinicians (or support) group."""

from __future__ import annotations

import getpass

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email
from django.db import transaction

from users import services
from users.models import CLINICIANS_GROUP, SUPPORT_GROUP, Profile, User


class Command(BaseCommand):
    help = (
        "Create a staff user in the clinicians group (or --support) and print a one-time "
        "password-set link, or ask for a password with --password-prompt."
    )

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--support", action="store_true", help="Support staff instead of a clinician.")
        parser.add_argument("--username", help="Defaults to the part of the email before @.")
        parser.add_argument("--first-name", default="")
        parser.add_argument("--last-name", default="")
        parser.add_argument(
            "--password-prompt", action="store_true", help="Ask for a password instead of a link."
        )
        parser.add_argument(
            "--base-url", default=None, help=f"Link base (default {settings.PUBLIC_BASE_URL})."
        )

    def handle(self, *args, **options):
        email = options["email"].strip()
        try:
            validate_email(email)
        except ValidationError:
            raise CommandError(f"'{email}' is not a valid email address.") from None
        username = (options["username"] or email.split("@")[0]).strip()
        if User.objects.filter(email__iexact=email).exists():
            raise CommandError(f"An account with email {email} already exists.")
        if User.objects.filter(username__iexact=username).exists():
            raise CommandError(f"The username '{username}' is taken; choose one with --username.")
        group_name = SUPPORT_GROUP if options["support"] else CLINICIANS_GROUP

        password = None
        if options["password_prompt"]:
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Password (again): "):
                raise CommandError("The passwords do not match.")
            try:
                validate_password(password, user=User(username=username, email=email))
            except ValidationError as error:
                raise CommandError(" ".join(error.messages)) from None

        with transaction.atomic():
            user = User(
                username=username,
                email=email,
                first_name=options["first_name"],
                last_name=options["last_name"],
                is_staff=True,
            )
            if password:
                user.set_password(password)
            else:
                user.set_unusable_password()
            user.save()
            Profile.objects.create(user=user)
            user.groups.add(Group.objects.get(name=group_name))

        role = "support" if options["support"] else "clinician"
        self.stdout.write(self.style.SUCCESS(f"Created {role} '{username}' <{email}>."))
        if not password:
            link = services.user_password_set_link(
                user=user, base_url=options["base_url"] or settings.PUBLIC_BASE_URL
            )
            self.stdout.write("Send them this one-time link to set their password:")
            self.stdout.write(f"  {link}")
