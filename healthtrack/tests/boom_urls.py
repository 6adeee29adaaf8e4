"""The real URLs plus views that fail on purpose, for the error-handling tests."""

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


urlpatterns = [path("api/v1/boom", BoomView.as_view()), *real_urlpatterns]
