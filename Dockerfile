# deploystream image: one image for both services, chosen by the command
# (`python -m streams` for the worker, `python -m gateway` for the gateway; see docker-compose.yml).
# Configuration comes only from DEPLOYSTREAM_* environment variables at run time; nothing secret
# is baked in.

FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# README.md* : pyproject.toml names README.md, which may not exist yet (the build only warns).
COPY pyproject.toml README.md* ./
COPY deploystream/ deploystream/
COPY gateway/ gateway/
COPY streams/ streams/
COPY schemas/ schemas/
# The project and its runtime dependencies only: no dev extras.
RUN pip install .


FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# Unprivileged user; /data (the worker's RocksDB, DEPLOYSTREAM_DATA_DIR in compose) is created
# here so that a named volume mounted on it starts out owned by that user.
RUN groupadd --system --gid 10001 deploystream \
    && useradd --system --uid 10001 --gid deploystream --create-home --home-dir /home/deploystream \
        --shell /usr/sbin/nologin deploystream \
    && mkdir /data \
    && chown deploystream:deploystream /data

COPY --from=build /opt/venv /opt/venv

USER 10001:10001
WORKDIR /home/deploystream

# 6066: worker web server, 8080: gateway.
EXPOSE 6066 8080

CMD ["python", "-m", "gateway"]
