"""faust-streaming worker: applies deployment events to a RocksDB table and serves lookups."""
