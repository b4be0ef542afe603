"""The worker's application factory."""

from __future__ import annotations

import faust

from streams.deployments.agents import register_agents
from streams.deployments.gating import GatingPolicy
from streams.deployments.progress import ReplayGuard, SourceOffsetTable
from streams.deployments.tables import (
    create_property_index,
    create_table,
)
from streams.deployments.views import register_views
from streams.kafka_security import faust_credentials
from streams.metrics import WorkerMetrics
from streams.settings import WorkerSettings
from streams.topics import DEAD_LETTER_HEADROOM_BYTES
from streams.web import register_health

__all__ = ["create_app"]


def create_app(settings: WorkerSettings) -> faust.App:
    """Build the faust app from settings alone (faust's own env lookups are not used)."""
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
        # Kafka wants at least three heartbeats per session timeout.
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
        processing_guarantee="at_least_once",
        # Changelog writes name their input offset, so a replay skips what tables have.
        Table=SourceOffsetTable,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # One produce request per table write costs more CPU than the write itself.
        producer_linger=settings.changelog_linger_ms / 1000,
        producer_max_batch_size=256 * 1024,
        # Records up to the record limit of our topics (dead letters carry a little more).
        producer_max_request_size=settings.max_record_bytes + DEAD_LETTER_HEADROOM_BYTES,
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
    table = create_table(app, settings)
    index = create_property_index(app, settings)
    policy = GatingPolicy(settings.gating_environment_types, settings.jira_base_url)
    dead_letters = app.topic(
        settings.dead_letter_topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    guard = ReplayGuard(app, settings.librdkafka_config(), settings.deployments_topic, table, index)
    register_agents(app, topic, table, index, policy, metrics, dead_letters, guard)
    register_views(app, table, metrics, settings.internal_secret)
    register_health(app, table, metrics)
    return app
