"""The real URLs plus views that fail on purpose, for the error-handling tests."""

import psycopg
from django.db import OperationalError
from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from healthtrack.urls import urlpatterns as real_urlpatterns


class BoomView(APIView):
    permission_classes: list = []
    authentication_classes: list = []

    def get(self, request):
        raise RuntimeError("secret internals that must not leak")

    def post(self, request):
        return Response({"received": request.data})


def database_down(request):
    """A plain Django view (not DRF) whose database is gone."""
    raise OperationalError("connection refused") from psycopg.OperationalError("connection refused")


urlpatterns = [
    path("api/v1/boom", BoomView.as_view()),
    path("api/v1/database-down", database_down),
    *real_urlpatterns,
]
