"""The benchmark's ceiling: the smallest Django app, served by the same gunicorn.

No installed apps, no middleware, no database, no templates: one URL whose view returns
``JsonResponse({"ok": True})``. ``scripts/bench.py`` serves it with the repo's
``gunicorn.conf.py`` (same workers, threads and access log as the real app) and drives it
with the same wrk parameters, so "route X runs at N % of the ceiling" compares HealthTrack
with what Django and gunicorn alone can do on this machine at the moment of the run
(docs/performance.md). This module is both the settings and the URLconf.
"""

from django.http import JsonResponse
from django.urls import path

# Not a secret: nothing here signs or encrypts anything (no sessions, no apps).
SECRET_KEY = "bench-ceiling-has-no-secrets"  # noqa: S105
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
ROOT_URLCONF = __name__
DATABASES: dict = {}
TEMPLATES: list = []
USE_TZ = True
USE_I18N = False
WSGI_APPLICATION = "ceiling_wsgi.application"


def ok(request):
    return JsonResponse({"ok": True})


urlpatterns = [path("", ok)]
