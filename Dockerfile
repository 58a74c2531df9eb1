# The IOC application image used by docker-compose.yml: `ioc` for the migration job, the stream
# workers, the simulator/replay and the Grafana push. One image, the command picks the role.
FROM python:3.11-slim

# tzdata: scenarios, rollups and the simulator's clock are in Asia/Ho_Chi_Minh.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tzdata \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    IOC_DATA_DIR=/data

WORKDIR /app
# Dependencies first (a layer that survives code changes), then the packages themselves.
# Only the stages are copied: no .venv, var/ or tests in the image.
COPY pyproject.toml README.md ./
COPY ioc ./ioc
COPY models ./models
COPY simulators ./simulators
COPY streams ./streams
COPY sinks ./sinks
COPY dashboards ./dashboards
COPY benchmarks ./benchmarks
COPY briefing ./briefing
COPY deploy ./deploy
RUN pip install . \
    && useradd --create-home --uid 10001 ioc \
    && mkdir -p /data \
    && chown ioc /data

USER ioc
CMD ["ioc", "--help"]
