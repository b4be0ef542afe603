"""Worker errors: one root."""

from __future__ import annotations

__all__ = ["StreamsError", "TopicSetupError"]


class StreamsError(Exception):
    """Root of every error the worker raises on purpose."""


class TopicSetupError(StreamsError):
    """The topics the worker needs could not be created or have the wrong shape."""
