import datetime

import pytest
from django.db import connection

from users.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_phi_columns_hold_no_plaintext():
    user = UserFactory(
        profile__medical_history="Type 2 diabetes, metformin 500mg",
        profile__date_of_birth=datetime.date(1971, 3, 14),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT medical_history, date_of_birth FROM users_profile WHERE user_id = %s", [user.pk]
        )
        medical_history, date_of_birth = cursor.fetchone()
    assert "diabetes" not in medical_history and "metformin" not in medical_history
    assert "1971" not in str(date_of_birth)
    assert medical_history.startswith("gAAAAA")  # a Fernet token

    user.profile.refresh_from_db()
    assert user.profile.medical_history == "Type 2 diabetes, metformin 500mg"
    assert user.profile.date_of_birth == datetime.date(1971, 3, 14)


def test_api_register_stores_encrypted(api_client):
    api_client.post(
        "/api/v1/users/register",
        {
            "email": "x@example.com",
            "username": "xavier",
            "password": "plum-Tree-47-orbit",
            "medical_history": "HIV positive",
            "date_of_birth": "1990-01-01",
        },
        format="json",
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT medical_history, date_of_birth FROM users_profile")
        row = cursor.fetchone()
    assert "HIV" not in row[0]
    assert "1990" not in str(row[1])


def test_undecryptable_value_raises_instead_of_leaking_ciphertext(settings):
    from healthtrack.encryption import UndecryptableValue
    from users.models import Profile

    user = UserFactory()
    settings.SECRET_KEY = "a-completely-different-key-0123456789"
    settings.SECRET_KEY_FALLBACKS = []
    with pytest.raises(UndecryptableValue):
        Profile.objects.get(pk=user.pk)
