"""deploystream's benchmark: ingest, apply, visibility lag, lookups, restarts and memory.

``make bench`` (or ``python -m bench``) starts a real broker, workers and gateways with the
project's own helpers, measures, and writes JSON and Markdown results under ``bench/results/``.
"""
