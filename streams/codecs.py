"""faust codec that stores table values as Avro records in the Confluent wire format."""

from __future__ import annotations

from typing import Any

from faust.serializers.codecs import Codec

from schemas.registry import RecordCodec

__all__ = ["AvroValueCodec"]


class AvroValueCodec(Codec):
    """Table values (and so their changelogs) are Avro, like everything else on Kafka:
    ``avro`` is a registered :class:`schemas.registry.FramedCodec`."""

    def __init__(self, avro: RecordCodec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._avro = avro

    def _dumps(self, obj: Any) -> bytes:
        return self._avro.encode(obj)

    def _loads(self, s: bytes) -> Any:
        return self._avro.decode(s)
