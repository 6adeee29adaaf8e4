"""``GET /health``: liveness and readiness in one answer."""

from __future__ import annotations

import logging

from django.db import connection
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from healthtrack.cache import cache_available

logger = logging.getLogger("healthtrack.health")


def database_available() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # any driver or pool error means "not ready"
        logger.warning("Health check: database unavailable (%s)", error.__class__.__name__)
        return False
    return True


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "error"])
    database = serializers.ChoiceField(choices=["ok", "error"])
    cache = serializers.ChoiceField(choices=["ok", "degraded"])


class HealthView(APIView):
    """200 when the database answers (the cache may be degraded), 503 when it does not."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        tags=["health"],
        summary="Liveness and readiness",
        responses={200: HealthSerializer, 503: HealthSerializer},
    )
    def get(self, request):
        body = health_status()
        return Response(
            body, status=200 if body["database"] == "ok" else 503, headers={"Cache-Control": "no-store"}
        )


def health_status() -> dict[str, str]:
    database_ok = database_available()
    cache_ok = cache_available()
    return {
        "status": "ok" if database_ok else "error",
        "database": "ok" if database_ok else "error",
        "cache": "ok" if cache_ok else "degraded",
    }
