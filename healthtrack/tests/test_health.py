from unittest import mock

import pytest

pytestmark = pytest.mark.django_db


def test_health_ok(api_client):
    response = api_client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "cache": "ok"}


def test_health_with_trailing_slash(api_client):
    assert api_client.get("/health/").status_code == 200


def test_health_database_down_is_503(api_client):
    with mock.patch("healthtrack.health.database_available", return_value=False):
        response = api_client.get("/health")
    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "error", "cache": "ok"}


def test_health_cache_down_is_degraded_but_200(api_client):
    with mock.patch("healthtrack.health.cache_available", return_value=False):
        response = api_client.get("/health")
    assert response.status_code == 200
    assert response.json()["cache"] == "degraded"
