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
# The runtime dependencies exactly as locked, hash-checked (requirements/runtime.lock, from
# `make lock`), before the sources: this layer is reused until the lock changes.
COPY requirements/runtime.lock requirements/
RUN pip install --require-hashes --no-deps -r requirements/runtime.lock
# README.md* : pyproject.toml names README.md, which may not exist yet (the build only warns).
COPY pyproject.toml README.md* ./
COPY deploystream/ deploystream/
COPY gateway/ gateway/
COPY streams/ streams/
COPY schemas/ schemas/
# The project itself, built with the locked setuptools: nothing unpinned is fetched.
RUN pip install --no-deps --no-build-isolation . && pip check


FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# Unprivileged user; /data (the worker's RocksDB, DEPLOYSTREAM_DATA_DIR in compose) and
# /secrets (credentials `deploystream compose-secrets` generates, DEPLOYSTREAM_SECRETS_DIR) are
# created here so that named volumes mounted on them start out owned by that user.
RUN groupadd --system --gid 10001 deploystream \
    && useradd --system --uid 10001 --gid deploystream --create-home --home-dir /home/deploystream \
        --shell /usr/sbin/nologin deploystream \
    && mkdir -p /data /secrets/gateway /secrets/worker \
    && chown -R deploystream:deploystream /data /secrets \
    && chmod -R 700 /secrets

COPY --from=build /opt/venv /opt/venv

USER 10001:10001
WORKDIR /home/deploystream

# 6066: worker web server, 8080: gateway.
EXPOSE 6066 8080

CMD ["python", "-m", "gateway"]
