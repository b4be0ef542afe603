"""The deployments domain: events in, current state out."""
