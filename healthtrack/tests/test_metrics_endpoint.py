"""/metrics: Prometheus text for allowed addresses, the JSON 404 for everyone else."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db


def scrape(client, **extra):
    return client.get("/metrics", **extra)


def assert_refused(response):
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"
    assert b"django_http" not in response.content


def test_refused_from_an_address_not_on_the_list(client):
    response = scrape(client, REMOTE_ADDR="203.0.113.9")
    assert_refused(response)
    # The same answer as any unknown path: the endpoint's existence is not disclosed.
    assert response.json() == client.get("/api/v1/no-such-route").json()


def test_served_to_localhost_with_request_db_and_cache_metrics(client, auth_client):
    auth_client.get("/api/v1/users/me")  # a DB query, a cache read, a named view
    client.get("/health")
    response = scrape(client)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response["Cache-Control"] == "no-store"
    text = response.content.decode()
    assert (
        'django_http_requests_total_by_view_transport_method_total{method="GET",transport="http",view="health"}'
        in text
    )
    assert (
        'django_http_requests_latency_seconds_by_view_method_bucket{le="0.001",method="GET",view="health"}'
        in text
    )
    assert "django_db_execute_total" in text and "django_db_query_duration_seconds_bucket" in text
    assert "django_cache_get_total" in text


def test_ipv6_loopback_and_trailing_slash(client):
    assert scrape(client, REMOTE_ADDR="::1").status_code == 200
    assert client.get("/metrics/", REMOTE_ADDR="::1").status_code == 200
    assert scrape(client, REMOTE_ADDR="::ffff:127.0.0.1").status_code == 200  # IPv4-mapped


def test_cidr_ranges(client, settings):
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8", "2001:db8::/32"]
    assert scrape(client, REMOTE_ADDR="10.42.7.3").status_code == 200
    assert scrape(client, REMOTE_ADDR="2001:db8::5").status_code == 200
    assert_refused(scrape(client, REMOTE_ADDR="11.0.0.1"))
    assert_refused(scrape(client, REMOTE_ADDR="127.0.0.1"))


def test_behind_a_proxy_the_forwarded_client_decides(client, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8"]
    # The proxy (127.0.0.1) forwards an outside caller: refused, although the proxy is local.
    assert_refused(scrape(client, REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9"))
    # A forged entry further left is ignored.
    assert_refused(scrape(client, REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="10.0.0.1, 203.0.113.9"))
    assert scrape(client, REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="10.1.1.1").status_code == 200


def test_any_host_header_and_no_https_redirect_for_allowed_scrapers(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["healthtrack.example.com"]
    response = scrape(client, HTTP_HOST="10.0.3.7:8000")  # Prometheus addresses pods by IP
    assert response.status_code == 200


def test_only_get(client):
    response = client.post("/metrics")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert_refused(client.post("/metrics", REMOTE_ADDR="203.0.113.9"))


def test_a_bad_allow_list_stops_the_app_at_start():
    import os

    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT, env={**os.environ, "METRICS_ALLOWED_IPS": "10.0.0.0/8,not-an-ip"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "METRICS_ALLOWED_IPS: 'not-an-ip'" in result.stderr
