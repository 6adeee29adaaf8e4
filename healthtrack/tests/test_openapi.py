import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_schema_is_served_and_documents_routes(api_client):
    response = api_client.get("/api/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    for route in ["/api/v1/users/register", "/api/v1/auth/token", "/api/v1/users/me", "/health"]:
        assert route in paths
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    me = paths["/api/v1/users/me"]["get"]
    assert {"200", "401", "404", "429"} <= set(me["responses"])


def test_schema_validates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert (tmp_path / "schema.yaml").stat().st_size > 1000


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_pages_are_offline(client, path):
    response = client.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html
    assert "/static/drf_spectacular_sidecar/" in html


@pytest.fixture(scope="module")
def openapi_schema(django_db_blocker):
    from drf_spectacular.generators import SchemaGenerator

    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in ("get", "put", "patch", "post", "delete"):
                yield f"{method.upper()} {path}", operation


def test_every_operation_documents_the_errors_any_request_can_get(openapi_schema):
    """414 was found by schemathesis: gunicorn answers a request line over 4094 bytes
    itself, on any route, and the schema did not say so."""
    for label, operation in _operations(openapi_schema):
        documented = set(operation["responses"])
        assert {"400", "404", "414", "429", "500", "503"} <= documented, label
        error = operation["responses"]["414"]["content"]["application/json"]["schema"]
        assert error == {"$ref": "#/components/schemas/Error"}, label


def test_request_bodies_say_unknown_fields_are_refused(openapi_schema):
    """Every request body refuses unknown keys with a 400 (StrictFieldsMixin, metrics'
    sample_clean); the schema said nothing, so clients (and schemathesis, which sent extra
    keys in most "valid" bodies) could not know."""
    components = openapi_schema["components"]["schemas"]
    # A FHIR Bundle is FHIR's document, not ours: its resources carry fields we ignore.
    open_documents = {"FhirImportBundleRequest"}
    bodies = 0
    for label, operation in _operations(openapi_schema):
        content = operation.get("requestBody", {}).get("content", {})
        if "application/json" not in content:
            continue
        if content["application/json"]["schema"]["$ref"].rsplit("/", 1)[1] in open_documents:
            continue
        bodies += 1
        ref = content["application/json"]["schema"]["$ref"]
        component = components[ref.rsplit("/", 1)[1]]
        assert component["additionalProperties"] is False, label
    assert bodies >= 20
    bulk_item = components["MetricBulkRequest"]["properties"]["samples"]["items"]
    assert components[bulk_item["$ref"].rsplit("/", 1)[1]]["additionalProperties"] is False
