import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(api_client):
    response = api_client.get("/api/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def _params(operation):
    return {p["name"] for p in operation.get("parameters", [])}


def test_every_metrics_route_is_documented(schema):
    paths = schema["paths"]
    assert set(paths["/api/v1/health-metrics"]) == {"post"}
    assert set(paths["/api/v1/health-metrics/{metric_id}"]) == {"get", "put", "patch", "delete"}
    assert set(paths["/api/v1/health-metrics/user/{user_id}"]) == {"get"}
    assert set(paths["/api/v1/health-metrics/bulk"]) == {"post"}
    assert set(paths["/api/v1/health-metrics/summary"]) == {"get"}


def test_filters_bodies_and_errors_are_documented(schema):
    paths = schema["paths"]
    listing = paths["/api/v1/health-metrics/user/{user_id}"]["get"]
    assert {"metric_type", "since", "until", "limit", "skip", "user_id"} <= _params(listing)
    summary = paths["/api/v1/health-metrics/summary"]["get"]
    assert {"days", "metric_type", "user_id"} == _params(summary)
    create = paths["/api/v1/health-metrics"]["post"]
    assert {"200", "201", "400", "401", "404", "413"} <= set(create["responses"])
    assert "user_id" in _params(create)
    bulk = paths["/api/v1/health-metrics/bulk"]["post"]
    assert {"200", "201", "400", "404", "413"} <= set(bulk["responses"])
    assert "1000" in bulk["description"]
    components = schema["components"]["schemas"]
    assert components["HealthMetric"]["properties"]["secondary_value"]["nullable"] is True
    assert components["HealthMetric"]["properties"]["external_id"]["nullable"] is True
    assert set(components["MetricBulkResult"]["properties"]) == {"created", "duplicates", "errors"}
    assert "daily totals" in components["MetricTypeSummary"]["properties"]["avg"]["description"]
