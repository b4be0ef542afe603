"""Operator tooling: the deploystream command, a local Kafka broker, the process stack."""
