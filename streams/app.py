"""The worker's application factory."""

from __future__ import annotations

import faust
from fastavro.schema import to_parsing_canonical_form

from streams.deployments.agents import ApplyOptions, DeploymentAgent
from streams.deployments.applier import DeploymentApplier
from streams.deployments.gating import GatingPolicy
from streams.deployments.intake import Intake, IntakeTransport
from streams.deployments.lookup_views import LookupServer, register_lookup_views
from streams.deployments.progress import ReplayGuard
from streams.deployments.query_views import register_query_views
from streams.deployments.renderings import FamilyOptions, Renderer
from streams.deployments.tables import create_index, create_table
from streams.deployments.views import register_views
from streams.deployments.writer import ChangelogWriter, changelog_producer_config
from streams.internal_auth import INTERNAL_SECRET_HEADER
from streams.kafka_security import faust_credentials
from streams.metrics import WorkerMetrics
from streams.registration import WorkerCodecs
from streams.settings import WorkerSettings
from streams.topics import DEAD_LETTER_HEADROOM_BYTES
from streams.web import register_health

__all__ = ["create_app"]

#: Input records fetched ahead of the apply loop (a few batches' worth).
INTAKE_BATCHES = 4


def create_app(settings: WorkerSettings, codecs: WorkerCodecs) -> faust.App:
    """Build the faust app from settings and the registered codecs alone (faust's own env
    lookups are not used)."""
    app = faust.App(
        settings.app_id,
        # faust lets its own variables (APP_WEB_TABLES_ENABLED, WEB_BIND, BROKER_URL, ...)
        # override what is passed here; an empty environment makes these settings final.
        env={},
        broker=[f"kafka://{server}" for server in settings.kafka_bootstrap.split(",")],
        broker_credentials=faust_credentials(settings),
        autodiscover=False,
        store="rocksdb://",
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        # Standbys keep a warm copy of the partitions other workers own, so a failover
        # replays only what the standby had not applied yet, not the whole changelog.
        table_standby_replicas=settings.standby_replicas,
        # A dead worker's partitions (and lookups of their keys) wait this long to move.
        broker_session_timeout=settings.session_timeout_s,
        # Static membership: a restarted worker rejoins as itself, without waiting for the
        # session timeout of its previous incarnation.
        consumer_group_instance_id=settings.group_instance_id,
        # Kafka wants at least three heartbeats per session timeout.
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        # Unbounded by default in faust: a restore could then decode a whole fetch of every
        # changelog partition (hundreds of thousands of small index records) at once.
        broker_max_poll_records=settings.max_poll_records,
        consumer_max_fetch_size=settings.max_partition_fetch_bytes,
        producer_acks=-1,
        # The web server listens on worker_host only; peers reach it at advertised_url.
        web_bind=settings.worker_host,
        web_host=settings.worker_host,
        web_port=settings.worker_port,
        canonical_url=settings.advertised_url,
        # Both expose table data and topology without authentication.
        web_tables_enabled=False,
        web_router_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
    )
    metrics = WorkerMetrics()
    topic = app.topic(
        settings.deployments_topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
    )
    # The apply loop reads the topic through the intake, not through an agent's stream:
    # the conductor only needs to know the topic to subscribe to it.
    intake = Intake(settings.deployments_topic, INTAKE_BATCHES * settings.apply_batch_max)
    transport = IntakeTransport(app.conf.broker_consumer, app)
    transport.intake = intake
    app.transport = transport
    app.topics.add(topic)
    stored = codecs.state
    renderer = Renderer(
        stored.decode,
        to_parsing_canonical_form(stored.schema).encode(),
        FamilyOptions(
            settings.rocksdb_write_buffer_bytes,
            settings.rocksdb_write_buffers,
            settings.rocksdb_block_cache_bytes,
        ),
    )
    table = create_table(app, settings, stored, renderer)
    index = create_index(app, settings, codecs.index)
    policy = GatingPolicy(settings.gating_environment_types, settings.jira_base_url)
    metrics.watch_listings(lambda: (renderer.hits, renderer.misses))
    guard = ReplayGuard(app, settings.librdkafka_config(), settings.deployments_topic, table, index)
    agent = DeploymentAgent(
        app,
        intake,
        (table, index),
        guard,
        DeploymentApplier(policy, metrics),
        ChangelogWriter(
            changelog_producer_config(
                settings.librdkafka_config(),
                settings.max_record_bytes + DEAD_LETTER_HEADROOM_BYTES,
            ),
            stopping=lambda: agent.stopping,
            stop_grace_s=settings.stop_grace_s,
        ),
        metrics,
        ApplyOptions(
            batch_max=settings.apply_batch_max,
            batch_s=settings.apply_batch_ms / 1000,
            max_record_bytes=settings.max_record_bytes,
            dead_letter_topic=settings.dead_letter_topic,
            stop_grace_s=settings.stop_grace_s,
        ),
        codecs,
        renderer,
    )
    app.service(agent)  # type: ignore[arg-type]  # faust accepts instances too
    register_views(app, table, metrics, settings.internal_secret)
    secret = settings.internal_secret
    lookups = LookupServer(
        app,
        table,
        (settings.deployments_topic, settings.partitions),
        stored.decode,
        metrics,
        lambda: bool(guard.rebuilding),
        {INTERNAL_SECRET_HEADER: secret.get_secret_value()} if secret else {},
        renderer,
    )
    register_lookup_views(lookups, secret)
    register_query_views(
        app,
        (table, index),
        settings.deployments_topic,
        stored.decode,
        metrics,
        lambda: bool(guard.rebuilding),
        settings.internal_secret,
        renderer,
    )
    register_health(app, table, metrics, lambda: bool(guard.rebuilding))
    return app
