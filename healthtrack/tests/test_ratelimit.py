"""Rate limits: every limit, its 429 body and Retry-After, client IPs, failing open."""

from __future__ import annotations

import logging
import types
from unittest import mock

import pytest
from django.core import checks
from django.test import override_settings
from django_ratelimit import core as ratelimit_core
from rest_framework.test import APIClient

from healthtrack.checks import check_rate_limit_store
from healthtrack.ratelimit import fail_open_warning
from healthtrack.tests.live import free_port
from users.tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

ME = "/api/v1/users/me"
TOKEN = "/api/v1/auth/token"
REGISTER = "/api/v1/users/register"


class Clock:
    """django-ratelimit's clock, frozen so tests never straddle a window boundary."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock():
    # A moment 30 s into a minute; windows are offset per key, tests compute their ends.
    frozen = Clock(1_800_000_030.25)
    with mock.patch.object(ratelimit_core, "time", types.SimpleNamespace(time=frozen.time)):
        yield frozen


@pytest.fixture
def limits(settings, clock):
    settings.RATE_LIMIT_ENABLED = True
    settings.RATE_LIMIT_REQUESTS_PER_MINUTE = 5
    settings.RATE_LIMIT_REQUESTS_PER_SECOND = 1000
    settings.RATE_LIMIT_AUTH_ATTEMPTS_PER_IP = 20
    settings.RATE_LIMIT_AUTH_ATTEMPTS_PER_USERNAME = 5
    settings.TRUSTED_PROXY_COUNT = 0
    return settings


def seconds_to_window_end(value: str, period: int, now: float) -> int:
    """What Retry-After must say: until the key's window (django-ratelimit's) ends."""
    with mock.patch.object(ratelimit_core, "time", types.SimpleNamespace(time=lambda: now)):
        window_end = ratelimit_core._get_window(value, period)
    return window_end - int(now) + 1


def assert_429(response, retry_after: int | None = None):
    assert response.status_code == 429
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == "throttled"
    assert "throttled" in body["detail"].lower()
    assert int(response["Retry-After"]) >= 1
    if retry_after is not None:
        assert int(response["Retry-After"]) == retry_after
    return body


def get(client, path=ME, **extra):
    return client.get(path, **extra)


# --- Per client IP --------------------------------------------------------------------


def test_ip_minute_limit(limits, clock, api_client):
    statuses = [get(api_client).status_code for _ in range(5)]
    assert statuses == [401] * 5  # counted, not limited (anonymous: 401)
    response = get(api_client)
    assert_429(response, retry_after=seconds_to_window_end("127.0.0.1", 60, clock.now))
    assert response["X-Request-ID"]

    clock.now += int(response["Retry-After"])  # the next window
    assert get(api_client).status_code == 401


def test_burst_limit_per_second(limits, clock, api_client):
    limits.RATE_LIMIT_REQUESTS_PER_MINUTE = 600
    limits.RATE_LIMIT_REQUESTS_PER_SECOND = 3
    assert [get(api_client).status_code for _ in range(3)] == [401] * 3
    assert_429(get(api_client), retry_after=1)
    clock.now += 1
    assert get(api_client).status_code == 401


def test_burst_refusals_do_not_spend_the_minute_budget(limits, clock, api_client):
    limits.RATE_LIMIT_REQUESTS_PER_SECOND = 2
    for _ in range(10):
        get(api_client)  # 2 counted by the minute limit, 8 refused by the burst limit
    clock.now += 1
    assert [get(api_client).status_code for _ in range(2)] == [401, 401]
    clock.now += 1
    assert get(api_client).status_code == 401  # 5th of the minute
    assert_429(get(api_client))


def test_limits_cover_every_api_route_but_not_health(limits, api_client):
    for _ in range(5):
        api_client.get("/api/v1/no-such-route")
    assert_429(api_client.get("/api/schema"))
    assert_429(api_client.post(TOKEN, {}, format="json"))
    assert api_client.get("/health").status_code == 200


def test_addresses_are_counted_separately(limits, api_client):
    for _ in range(5):
        get(api_client, REMOTE_ADDR="10.0.0.1")
    assert_429(get(api_client, REMOTE_ADDR="10.0.0.1"))
    assert get(api_client, REMOTE_ADDR="10.0.0.2").status_code == 401


def test_rotating_x_forwarded_for_does_not_escape_without_trusted_proxies(limits, api_client):
    for n in range(5):
        get(api_client, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")
    assert_429(get(api_client, HTTP_X_FORWARDED_FOR="203.0.113.99"))


def test_rotating_x_forwarded_for_does_not_escape_behind_a_proxy(limits, api_client):
    limits.TRUSTED_PROXY_COUNT = 1
    # The proxy appends the address it saw (198.51.100.7); the rest is the client's.
    for n in range(5):
        get(api_client, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}, 198.51.100.7")
    assert_429(get(api_client, HTTP_X_FORWARDED_FOR="1.2.3.4, 5.6.7.8, 198.51.100.7"))
    # Another client behind the same proxy has its own budget.
    assert get(api_client, HTTP_X_FORWARDED_FOR="198.51.100.8").status_code == 401


def test_ipv6_clients_are_counted_per_64(limits, api_client):
    for n in range(5):
        get(api_client, REMOTE_ADDR=f"2001:db8:0:1::{n + 1}")
    assert_429(get(api_client, REMOTE_ADDR="2001:db8:0:1:ffff::9"))
    assert get(api_client, REMOTE_ADDR="2001:db8:0:2::1").status_code == 401


# --- Per user -------------------------------------------------------------------------


def test_user_minute_limit_follows_the_user_across_addresses(limits, clock, user, make_client):
    client_for = make_client
    client = client_for(user)
    statuses = [get(client, REMOTE_ADDR=f"10.0.0.{n}").status_code for n in range(5)]
    assert statuses == [200] * 5
    response = get(client, REMOTE_ADDR="10.0.0.99")
    assert_429(response, retry_after=seconds_to_window_end(f"user:{user.pk}", 60, clock.now))
    # Someone else from a fresh address is not affected.
    assert get(client_for(UserFactory()), REMOTE_ADDR="10.0.1.1").status_code == 200


def test_forged_token_cannot_spend_another_users_budget(limits, user, make_client):
    client_for = make_client
    victim = client_for(user)
    header, payload, _signature = victim.tokens["access"].split(".")
    forged = APIClient()
    forged.credentials(HTTP_AUTHORIZATION=f"Bearer {header}.{payload}.{'A' * 43}")
    for n in range(10):
        assert get(forged, REMOTE_ADDR=f"10.0.2.{n}").status_code == 401
    assert [get(victim, REMOTE_ADDR=f"10.0.3.{n}").status_code for n in range(5)] == [200] * 5


def test_refresh_token_does_not_identify_a_user_for_limits(limits, user, make_client):
    client_for = make_client
    client = client_for(user)
    forged = APIClient()
    forged.credentials(HTTP_AUTHORIZATION=f"Bearer {client.tokens['refresh']}")
    for n in range(6):
        get(forged, REMOTE_ADDR=f"10.0.4.{n}")
    assert get(client, REMOTE_ADDR="10.0.5.1").status_code == 200


def test_disabled_rate_limits_never_refuse(limits, api_client):
    limits.RATE_LIMIT_ENABLED = False
    limits.RATE_LIMIT_REQUESTS_PER_SECOND = 1
    assert {get(api_client).status_code for _ in range(30)} == {401}
    assert {api_client.post(TOKEN, {"username": "a", "password": "b"}).status_code for _ in range(8)} == {401}


# --- Sign-in and sign-up ----------------------------------------------------------------


def login(client, username, password="wrong-password", **extra):  # noqa: S107
    return client.post(TOKEN, {"username": username, "password": password}, format="json", **extra)


def test_login_attempts_per_ip_and_username(limits, clock, api_client):
    limits.RATE_LIMIT_REQUESTS_PER_MINUTE = 600
    UserFactory(username="ada")
    assert [login(api_client, name).status_code for name in ["ada", "ADA", "ada", " Ada", "ada"]] == [401] * 5
    # The right password does not help: the attempts are used up.
    body = assert_429(
        login(api_client, "ada", DEFAULT_PASSWORD),
        retry_after=seconds_to_window_end("127.0.0.1|ada", 60, clock.now),
    )
    assert "access" not in body
    # Another account from this address, and this account from another address, still work.
    UserFactory(username="grace")
    assert login(api_client, "grace", DEFAULT_PASSWORD).status_code == 200
    assert login(api_client, "ada", DEFAULT_PASSWORD, REMOTE_ADDR="10.9.9.9").status_code == 200
    clock.now += 61
    assert login(api_client, "ada", DEFAULT_PASSWORD).status_code == 200


def test_a_numeric_username_cannot_dodge_the_per_username_limit(limits, api_client):
    limits.RATE_LIMIT_REQUESTS_PER_MINUTE = 600
    UserFactory(username="12345")
    for _ in range(5):
        api_client.post(TOKEN, {"username": 12345, "password": "wrong"}, format="json")
    assert_429(login(api_client, "12345", DEFAULT_PASSWORD))


def test_login_attempts_per_ip(limits, api_client):
    limits.RATE_LIMIT_REQUESTS_PER_MINUTE = 600
    assert {login(api_client, f"user{n}").status_code for n in range(20)} == {401}
    assert_429(login(api_client, "someone-new"))
    assert_429(api_client.post(TOKEN, {}, format="json"))  # bodies without a username count too
    assert login(api_client, "someone-new", REMOTE_ADDR="10.9.9.9").status_code == 401


def test_refused_login_attempt_checks_no_password(limits, api_client):
    limits.RATE_LIMIT_REQUESTS_PER_MINUTE = 600
    limits.RATE_LIMIT_AUTH_ATTEMPTS_PER_USERNAME = 1
    UserFactory(username="ada")
    login(api_client, "ada")
    with mock.patch("users.services.authenticate") as authenticate:
        assert_429(login(api_client, "ada", DEFAULT_PASSWORD))
    authenticate.assert_not_called()


def register(client, username, **extra):
    body = {"email": f"{username}@example.com", "username": username, "password": "x"}
    return client.post(REGISTER, body, format="json", **extra)


def test_registration_attempts_per_ip_and_username(limits, api_client):
    limits.RATE_LIMIT_REQUESTS_PER_MINUTE = 600
    assert {register(api_client, "newbie").status_code for _ in range(5)} == {400}
    assert_429(register(api_client, "NEWBIE"))
    assert register(api_client, "other").status_code == 400


def test_registration_attempts_per_ip(limits, api_client):
    limits.RATE_LIMIT_REQUESTS_PER_MINUTE = 600
    assert {register(api_client, f"newbie{n}").status_code for n in range(20)} == {400}
    assert_429(register(api_client, "newbie-last"))


def test_login_and_registration_are_counted_apart(limits, api_client):
    limits.RATE_LIMIT_REQUESTS_PER_MINUTE = 600
    for _ in range(5):
        login(api_client, "ada")
    assert register(api_client, "ada").status_code == 400


# --- Failing open -------------------------------------------------------------------------


def test_limits_fail_open_with_a_warning_when_redis_is_down(limits, settings, api_client, caplog):
    settings.CACHES = {
        "default": {
            "BACKEND": "healthtrack.cache.ResilientRedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.1, "SOCKET_TIMEOUT": 0.1},
        }
    }
    fail_open_warning.reset()
    with caplog.at_level(logging.WARNING, logger="healthtrack"):
        statuses = [get(api_client).status_code for _ in range(12)]
    assert statuses == [401] * 12
    warnings = [r.getMessage() for r in caplog.records if r.name == "healthtrack.ratelimit"]
    assert len(warnings) == 1  # once a minute, not once a request
    assert "failing open" in warnings[0]


# --- Configuration -----------------------------------------------------------------------


def test_store_check_accepts_redis_and_the_embedded_default():
    # override_settings inside the test: the per-test cache.clear() must see real caches.
    locmem = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    with override_settings(REDIS_URL="", CACHES=locmem):
        assert check_rate_limit_store(None) == []
    redis = {"default": {"BACKEND": "healthtrack.cache.ResilientRedisCache", "LOCATION": "redis://x/0"}}
    with override_settings(REDIS_URL="redis://x/0", CACHES=redis):
        assert check_rate_limit_store(None) == []


@pytest.mark.parametrize(
    "backend",
    [
        "django.core.cache.backends.dummy.DummyCache",
        "django.core.cache.backends.db.DatabaseCache",
        "django.core.cache.backends.filebased.FileBasedCache",
    ],
)
def test_store_check_refuses_caches_without_shared_atomic_counters(backend):
    with override_settings(CACHES={"default": {"BACKEND": backend, "LOCATION": "x"}}):
        problems = check_rate_limit_store(None)
    assert [p.id for p in problems] == ["healthtrack.E001"]
    assert problems[0].level == checks.ERROR


def test_store_check_refuses_local_memory_when_redis_is_configured():
    locmem = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    with override_settings(REDIS_URL="redis://x/0", CACHES=locmem):
        assert [p.id for p in check_rate_limit_store(None)] == ["healthtrack.E001"]


def test_django_ratelimit_checks_are_replaced_not_lost():
    from django.core.management import call_command

    call_command("check")  # no django_ratelimit.E003/W001 for our caches, no errors
