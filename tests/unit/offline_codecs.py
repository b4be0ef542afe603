"""Worker codecs for tests that build the worker app but never encode: no registry is asked."""

from __future__ import annotations

from schemas.registry import FramedCodec, SchemaRegistry
from streams.registration import WorkerCodecs

__all__ = ["offline_worker_codecs"]

_RECORDS = ("DeploymentEvent", "StoredDeployment", "DeploymentIndexEntry", "DeadLetter")


def offline_worker_codecs() -> WorkerCodecs:
    """Codecs bound to a registry address nothing listens on."""
    registry = SchemaRegistry("http://127.0.0.1:9")
    return WorkerCodecs(*(FramedCodec(record, registry) for record in _RECORDS))
