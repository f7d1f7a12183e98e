# recloop image: workers (`recloop worker`), the HTTP API and console (`recloop serve`), topic
# creation (`recloop topics create`) and the simulator, from one build.
#
#   docker compose up --build --scale worker=3
#
# Dependencies come from the committed lock file (exact versions and hashes, `make lock`),
# installed before any source is copied: a code change rebuilds only the last layers.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# 1. dependencies only: this layer is reused until requirements.lock changes
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock

# 2. the project itself, without resolving anything again
COPY pyproject.toml README.md LICENSE ./
COPY schemas ./schemas
COPY pipeline ./pipeline
COPY agents ./agents
RUN pip install --no-deps --no-build-isolation . \
    && useradd --system --create-home --uid 10001 recloop \
    && install -d -o recloop -g recloop -m 0750 /var/lib/recloop

# /app stays root-owned and read-only for the process; Faust's data folder goes to
# RECLOOP_DATA_DIR, the only place the worker writes (compose mounts a tmpfs there).
USER recloop
ENV RECLOOP_DATA_DIR=/var/lib/recloop \
    RECLOOP_KAFKA_BOOTSTRAP=kafka:9092 \
    RECLOOP_REDIS_URL=redis://redis:6379/0 \
    RECLOOP_WEB_HOST=0.0.0.0

EXPOSE 6066 8000
CMD ["recloop", "worker"]
