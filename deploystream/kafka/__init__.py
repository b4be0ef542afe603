"""Run a real Kafka broker from Maven Central jars (no Docker needed)."""
