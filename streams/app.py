"""The worker's application factory."""

from __future__ import annotations

import faust

from streams.deployments.agents import register_agents
from streams.deployments.tables import create_table
from streams.deployments.views import register_views
from streams.metrics import WorkerMetrics
from streams.settings import WorkerSettings
from streams.web import register_health

__all__ = ["create_app"]


def create_app(settings: WorkerSettings) -> faust.App:
    """Build the faust app from settings alone (faust's own env lookups are not used)."""
    url = settings.worker_url or f"http://{settings.worker_host}:{settings.worker_port}"
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{server}" for server in settings.kafka_bootstrap.split(",")],
        autodiscover=False,
        store="rocksdb://",
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        table_standby_replicas=settings.standby_replicas,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        web_bind=settings.worker_host,
        web_host=settings.worker_host,
        web_port=settings.worker_port,
        canonical_url=url,
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
    register_agents(app, topic, table, metrics)
    register_views(app, table, metrics)
    register_health(app, metrics)
    return app
