# deploystream image. Targets (docker-compose.yml names one per service):
#   runtime (also the default): worker and gateway (`python -m streams`, `python -m gateway`)
#           and the one-shot `deploystream compose-secrets`.
#   java:   runtime plus a Java runtime, Kafka's jars and Apicurio Registry, for
#           `deploystream kafka` and `deploystream registry`.
# Configuration comes only from DEPLOYSTREAM_* environment variables and command options at
# run time; nothing secret is baked in. The only image pulled is the base below, by tag (see
# README, "Reproducible installs"); its Debian release is named so that the Java package
# name below always exists.

FROM python:3.11-slim-trixie AS build

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


FROM python:3.11-slim-trixie AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# Unprivileged user; /data (the worker's RocksDB, DEPLOYSTREAM_DATA_DIR in compose; the
# broker's data in the java image) and /secrets (credentials `deploystream compose-secrets`
# generates, DEPLOYSTREAM_SECRETS_DIR) are created here so that named volumes mounted on them
# start out owned by that user.
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


# Kafka's jars and Apicurio Registry from Maven Central, fetched and checked at build time by
# the code behind `make kafka-jars` and `make registry-app`: Maven with --strict-checksums,
# then every file against the SHA-256 pins of deploystream/kafka/jars.sha256 and
# deploystream/registry/apicurio.py; any mismatch fails the build. Only the modules that fetch
# are copied, so this layer is rebuilt when they change, not with every source change.
FROM python:3.11-slim-trixie AS artifacts

# Maven and its Java from Debian (apt checks the archive's signatures). Slim images drop the
# man page folders, where the openjdk packages' postinst links man pages.
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends maven openjdk-21-jre-headless \
    && rm -rf /var/lib/apt/lists/*

ENV DEPLOYSTREAM_KAFKA_CACHE=/opt/deploystream/kafka \
    DEPLOYSTREAM_REGISTRY_CACHE=/opt/deploystream/apicurio \
    PYTHONPATH=/src
WORKDIR /src
COPY deploystream/__init__.py deploystream/
COPY deploystream/kafka/ deploystream/kafka/
COPY deploystream/registry/ deploystream/registry/
# The caches are filled under private temporary names (mkdtemp: mode 700) and renamed when
# complete; the java image's unprivileged user must be able to read them.
RUN python -c 'from deploystream.kafka.jars import ensure_libs; print(ensure_libs())' \
    && python -c 'from deploystream.registry.apicurio import ensure_app; print(ensure_app())' \
    && chmod -R a+rX /opt/deploystream


FROM runtime AS java

# Java 21 from Debian trixie, security-supported there: Apicurio 3.3 needs >= 21, Kafka 4
# >= 17. The JVM is the only thing this stage installs; the artifacts come checked from above.
USER root
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends openjdk-21-jre-headless \
    && rm -rf /var/lib/apt/lists/*
COPY --from=artifacts /opt/deploystream /opt/deploystream
# Where `deploystream kafka` and `deploystream registry` find them: nothing is downloaded at
# start (there is no Maven here), and the jars are checked against their pins again.
ENV DEPLOYSTREAM_KAFKA_CACHE=/opt/deploystream/kafka \
    DEPLOYSTREAM_REGISTRY_CACHE=/opt/deploystream/apicurio
USER 10001:10001

# 9092: Kafka on the compose network, 9094: Kafka for the host, 8080: the registry.
EXPOSE 9092 9094 8080

# Compose names the command (`deploystream kafka` or `deploystream registry`).
CMD ["python", "-m", "deploystream", "--help"]


# The default target (`docker build .`): the slim runtime, without Java.
FROM runtime
