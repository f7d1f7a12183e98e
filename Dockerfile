# recloop worker / simulator image: `docker compose up --scale worker=3` runs three workers
# that share one consumer group and split the topic partitions between them.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# metadata first, code second: only the last layers rebuild when code changes
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY pipeline ./pipeline
COPY agents ./agents
RUN pip install . \
    && useradd --create-home --uid 10001 recloop

USER recloop

# compose overrides these; they make the image usable on its own in the same network
ENV RECLOOP_KAFKA_BOOTSTRAP=kafka:9092 \
    RECLOOP_REDIS_URL=redis://redis:6379/0 \
    RECLOOP_WEB_HOST=0.0.0.0

EXPOSE 6066
CMD ["recloop", "worker"]
