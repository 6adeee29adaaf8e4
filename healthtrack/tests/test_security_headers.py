"""Security headers on every response, and CORS only for the allowed origins."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

APP_ORIGIN = "https://app.example.com"


@pytest.fixture
def secure_transport(settings):
    """What SECURE_TRANSPORT (the default with DEBUG off) switches on."""
    settings.DEBUG = False
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    return settings


def test_hsts_over_https_with_secure_transport(secure_transport, auth_client):
    response = auth_client.get("/api/v1/users/me", secure=True)
    assert response.status_code == 200
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


def test_plain_http_is_redirected_with_secure_transport(secure_transport, api_client):
    response = api_client.get("/api/v1/users/me")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/api/v1/users/me"


def test_health_stays_reachable_over_http_for_load_balancers(secure_transport, api_client):
    assert api_client.get("/health").status_code == 200


def test_no_hsts_without_secure_transport(api_client, settings):
    settings.SECURE_HSTS_SECONDS = 0  # DEBUG / SECURE_TRANSPORT=false
    response = api_client.get("/health", secure=True)
    assert "Strict-Transport-Security" not in response


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/users/me", 200),
        ("/api/v1/users/999999", 404),
        ("/api/v1/no-such-route", 404),
        ("/health", 200),
        ("/admin/login/", 200),
    ],
)
def test_nosniff_and_referrer_policy_everywhere(auth_client, path, status):
    response = auth_client.get(path)
    assert response.status_code == status
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_unauthenticated_and_throttled_answers_carry_them_too(api_client, settings):
    assert api_client.get("/api/v1/users/me")["X-Content-Type-Options"] == "nosniff"
    settings.RATE_LIMIT_ENABLED = True
    settings.RATE_LIMIT_REQUESTS_PER_SECOND = 0
    response = api_client.get("/api/v1/users/me")
    assert response.status_code == 429
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("path", ["/admin/login/", "/admin/"])
def test_admin_cannot_be_framed(client, path):
    response = client.get(path)
    assert response["X-Frame-Options"] == "DENY"


# --- CORS -------------------------------------------------------------------------------


@pytest.fixture
def cors(settings):
    settings.CORS_ALLOWED_ORIGINS = [APP_ORIGIN]
    return settings


def test_allowed_origin_may_read_api_responses(cors, auth_client):
    response = auth_client.get("/api/v1/users/me", HTTP_ORIGIN=APP_ORIGIN)
    assert response["Access-Control-Allow-Origin"] == APP_ORIGIN


@pytest.mark.parametrize("origin", ["https://evil.example.net", "http://app.example.com", "null"])
def test_other_origins_get_no_cors_headers(cors, auth_client, origin):
    response = auth_client.get("/api/v1/users/me", HTTP_ORIGIN=origin)
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response


def test_preflight_for_the_allowed_origin(cors, api_client):
    response = api_client.options(
        "/api/v1/users/me",
        HTTP_ORIGIN=APP_ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="PATCH",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type",
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert "PATCH" in response["Access-Control-Allow-Methods"]
    assert "authorization" in response["Access-Control-Allow-Headers"].lower()


def test_preflight_for_another_origin_is_not_allowed(cors, api_client):
    response = api_client.options(
        "/api/v1/users/me",
        HTTP_ORIGIN="https://evil.example.net",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="DELETE",
    )
    assert "Access-Control-Allow-Origin" not in response


def test_no_cors_outside_the_api(cors, client):
    response = client.get("/admin/login/", HTTP_ORIGIN=APP_ORIGIN)
    assert "Access-Control-Allow-Origin" not in response


def test_no_origin_is_allowed_by_default(auth_client, settings):
    assert settings.CORS_ALLOWED_ORIGINS == []
    response = auth_client.get("/api/v1/users/me", HTTP_ORIGIN=APP_ORIGIN)
    assert "Access-Control-Allow-Origin" not in response


def test_a_throttled_answer_is_readable_by_the_allowed_origin(cors, api_client):
    cors.RATE_LIMIT_ENABLED = True
    cors.RATE_LIMIT_REQUESTS_PER_SECOND = 0
    response = api_client.get("/api/v1/users/me", HTTP_ORIGIN=APP_ORIGIN)
    assert response.status_code == 429
    assert response["Access-Control-Allow-Origin"] == APP_ORIGIN


@pytest.mark.parametrize(
    "path", ["/api/v1/users/me", "/api/v1/health-metrics/summary"]
)  # DRF; answered early
def test_without_an_origin_the_answer_only_varies_on_it(cors, auth_client, path):
    """What django-cors-headers answers a request that sends no Origin (apps, servers),
    through the middleware's shortcut for them: Vary: Origin, no CORS headers."""
    response = auth_client.get(path)
    assert response.status_code == 200
    assert "origin" in [value.strip().lower() for value in response["Vary"].split(",")]
    assert not [name for name in response.headers if name.lower().startswith("access-control-")]


def test_without_an_origin_nothing_is_added_outside_the_api(cors, client):
    response = client.get("/admin/login/")
    assert "origin" not in response.get("Vary", "").lower()
