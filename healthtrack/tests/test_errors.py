import logging

import pytest

pytestmark = pytest.mark.django_db


def assert_json_error(response, status, code=None):
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    if code:
        assert body["code"] == code
    return body


def test_malformed_json_is_400(auth_client):
    response = auth_client.patch("/api/v1/users/me", data="{not json", content_type="application/json")
    assert_json_error(response, 400, "parse_error")


def test_wrong_content_type_is_415(auth_client):
    response = auth_client.patch(
        "/api/v1/users/me", data="first_name=x", content_type="application/x-www-form-urlencoded"
    )
    assert_json_error(response, 415, "unsupported_media_type")


@pytest.mark.parametrize("path", ["/api/v1/does-not-exist", "/api/v2/users", "/api/", "/api"])
def test_unknown_api_route_is_404_json(api_client, path):
    assert_json_error(api_client.get(path), 404, "not_found")


def test_unknown_route_is_json_even_with_debug(api_client, settings):
    settings.DEBUG = True
    assert_json_error(api_client.get("/api/v1/nothing-here"), 404, "not_found")


def test_wrong_method_is_405(auth_client):
    body = assert_json_error(
        auth_client.post("/api/v1/users/me", {}, format="json"), 405, "method_not_allowed"
    )
    assert "POST" in body["detail"]


def test_wrong_method_on_health_is_405_json(api_client):
    assert_json_error(api_client.post("/health", {}, format="json"), 405)


def test_unauthenticated_is_401(api_client):
    assert_json_error(api_client.get("/api/v1/users"), 401, "not_authenticated")


def test_validation_error_names_field(api_client):
    body = assert_json_error(
        api_client.post("/api/v1/auth/token", {"username": "x"}, format="json"), 400, "invalid"
    )
    assert body["errors"] == {"password": ["This field is required."]}
    assert body["detail"] == "password: This field is required."


def test_body_must_be_an_object(api_client):
    response = api_client.post("/api/v1/auth/token", [1, 2], format="json")
    assert_json_error(response, 400)


@pytest.mark.urls("healthtrack.tests.boom_urls")
def test_unhandled_exception_is_500_json_without_traceback(api_client, caplog):
    with caplog.at_level(logging.ERROR):
        response = api_client.get("/api/v1/boom")
    body = assert_json_error(response, 500, "server_error")
    assert "secret internals" not in response.content.decode()
    assert "Traceback" not in response.content.decode()
    assert "secret internals" in caplog.text  # the traceback goes to the log
    assert response["X-Request-ID"]
    assert body["detail"]


@pytest.mark.urls("healthtrack.tests.boom_urls")
def test_unhandled_exception_is_json_even_with_debug(api_client, settings):
    settings.DEBUG = True
    assert_json_error(api_client.get("/api/v1/boom"), 500, "server_error")


@pytest.mark.urls("healthtrack.tests.boom_urls")
def test_body_over_one_megabyte_is_413(api_client):
    payload = '{"x": "' + "a" * (1024 * 1024 + 10) + '"}'
    response = api_client.post("/api/v1/boom", data=payload, content_type="application/json")
    body = assert_json_error(response, 413, "payload_too_large")
    assert "1048576" in body["detail"]


def test_request_id_is_echoed_or_generated(api_client):
    response = api_client.get("/health", HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-ID"] == "abc-123"
    generated = api_client.get("/health", HTTP_X_REQUEST_ID="bad id with spaces <script>")
    assert generated["X-Request-ID"] != "bad id with spaces <script>"
    assert len(generated["X-Request-ID"]) == 32


def test_admin_keeps_html_errors(client):
    response = client.get("/admin/nothing-here/")
    assert response.status_code in (302, 404)
