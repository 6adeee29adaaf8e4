"""WSGI entry of the ceiling app (``ceiling_settings``); see that module.

gunicorn ceiling_wsgi:application --config gunicorn.conf.py --pythonpath scripts/bench
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ["DJANGO_SETTINGS_MODULE"] = "ceiling_settings"

application = get_wsgi_application()
