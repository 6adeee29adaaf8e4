# syntax=docker/dockerfile:1
# HealthTrack API image: gunicorn on Python 3.11, non-root, migrations on start.

# Wheels for every requirement, built where a C compiler is: gunicorn-h1c (gunicorn's
# C request parser) is published as source only. The compiler stays out of the image.
FROM python:3.11-slim-bookworm AS wheels
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
COPY requirements.txt .
RUN pip wheel --no-cache-dir --wheel-dir /wheels -r requirements.txt

FROM python:3.11-slim-bookworm AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

RUN groupadd --system --gid 10001 healthtrack \
 && useradd --system --uid 10001 --gid healthtrack --home-dir /app --shell /usr/sbin/nologin healthtrack

COPY requirements.txt .
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels -r requirements.txt

COPY --chown=healthtrack:healthtrack . .

# Static files are collected at build time with throwaway keys (nothing is encrypted
# or signed here); the real keys come from the environment at run time.
RUN DEBUG=false SECRET_KEY=build-only FIELD_ENCRYPTION_KEY=build-only JWT_SIGNING_KEY=build-only \
    STATIC_ROOT=/app/staticfiles python manage.py collectstatic --noinput --verbosity 0 \
 && mkdir -p /app/var && chown -R healthtrack:healthtrack /app/var /app/staticfiles

ENV DEBUG=false \
    STATIC_ROOT=/app/staticfiles \
    LOG_FORMAT=json \
    GUNICORN_BIND=0.0.0.0:8000

USER healthtrack
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status == 200 else 1)"

CMD ["sh", "-c", "python manage.py migrate --noinput && exec gunicorn healthtrack.wsgi --config gunicorn.conf.py"]
