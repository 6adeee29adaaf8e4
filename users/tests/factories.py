from __future__ import annotations

import datetime

import factory
from django.contrib.auth.models import Group

from users.models import CLINICIANS_GROUP, SUPPORT_GROUP, CareTeamMembership, Profile, User
from users.roles import roles_sync

DEFAULT_PASSWORD = "correct-horse-battery-staple"


class ProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Profile

    user = factory.SubFactory("users.tests.factories.UserFactory", profile=None)
    date_of_birth = datetime.date(1988, 4, 12)
    gender = "female"
    height_cm = 168.0
    occupation = "Engineer"
    medical_history = "Asthma since childhood."
    timezone = "UTC"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    first_name = "Ada"
    last_name = "Lovelace"
    profile = factory.RelatedFactory(ProfileFactory, factory_related_name="user")

    @factory.post_generation
    def password(self, create, extracted, **kwargs):
        self.set_password(extracted or DEFAULT_PASSWORD)
        if create:
            self.save(update_fields=["password"])


def _staff_in(group_name: str, **kwargs) -> User:
    user = UserFactory(is_staff=True, **kwargs)
    if not Group.objects.filter(name=group_name).exists():
        roles_sync()  # a flushed test database lost the groups migration 0002 made
    user.groups.add(Group.objects.get(name=group_name))
    return user


def ClinicianFactory(**kwargs) -> User:
    return _staff_in(CLINICIANS_GROUP, **kwargs)


def SupportFactory(**kwargs) -> User:
    return _staff_in(SUPPORT_GROUP, **kwargs)


def AdminFactory(**kwargs) -> User:
    return UserFactory(is_staff=True, is_superuser=True, **kwargs)


class CareTeamMembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CareTeamMembership

    patient = factory.SubFactory(UserFactory)
    clinician = factory.LazyFunction(ClinicianFactory)
