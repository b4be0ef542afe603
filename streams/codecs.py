"""faust codec that stores table values as Avro ``StoredDeployment`` records."""

from __future__ import annotations

from typing import Any

from faust.serializers.codecs import Codec

from schemas import AvroCodec

__all__ = ["AvroValueCodec", "StoredDeploymentCodec"]


class AvroValueCodec(Codec):
    """Table values (and so their changelogs) are Avro, like everything else on Kafka."""

    def __init__(self, record: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._avro = AvroCodec(record)

    def _dumps(self, obj: Any) -> bytes:
        return self._avro.encode(obj)

    def _loads(self, s: bytes) -> Any:
        return self._avro.decode(s)


class StoredDeploymentCodec(AvroValueCodec):
    """Values of the deployments table: ``StoredDeployment``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("StoredDeployment", **kwargs)
