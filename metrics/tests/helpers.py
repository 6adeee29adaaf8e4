"""Paths of the metrics API, for the tests."""

from __future__ import annotations

METRICS = "/api/v1/health-metrics"
BULK = "/api/v1/health-metrics/bulk"
SUMMARY = "/api/v1/health-metrics/summary"


def detail_url(metric_id) -> str:
    return f"{METRICS}/{metric_id}"


def list_url(user_id) -> str:
    return f"{METRICS}/user/{user_id}"
