# One image: the API by default; the worker by overriding the command:
#   docker run IMAGE python -m service worker
# PYTHON_IMAGE: another Python 3.11 image with pip (scripts/docker-smoke's
# DOCKER_SMOKE_BASE), for a daemon that cannot pull this one.
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DATABASE_URL=sqlite+aiosqlite:////data/corti-usage.db

WORKDIR /app
# The service only: tests, bench/ and the Corti sandbox (sandbox/) stay out of the image.
# Exactly the locked versions (requirements/service.lock, hash-checked), then the
# service itself without resolving anything anew.
COPY requirements/service.lock ./requirements/
RUN pip install --no-compile --require-hashes -r requirements/service.lock
COPY pyproject.toml README.md ./
COPY service ./service
COPY alembic ./alembic
# (setuptools leaves build/ and the .egg-info behind in /app: removed in the same layer.)
RUN pip install --no-compile --no-deps --no-build-isolation . \
    && rm -rf build *.egg-info \
    && pip check \
    && useradd --system --uid 10001 --home-dir /app app \
    && mkdir -p /data /app/var \
    && chown app /data /app/var

USER app
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
# Migrations first, then the API on all interfaces inside the container.
CMD ["sh", "-c", "python -m service migrate && exec python -m service serve --host 0.0.0.0 --port 8000"]
