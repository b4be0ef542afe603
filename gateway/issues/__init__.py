"""The issue registry: which issue keys each tenant's Jira site knows.

A compacted Kafka topic (``DEPLOYSTREAM_ISSUES_TOPIC``; key ``IssueKey``, value ``KnownIssue``,
a tombstone when an issue is deleted or moved away from a key) is fed by Jira's issue webhooks
(:mod:`gateway.issues.webhook`) and by ``deploystream issues import`` (a backfill from Jira's
search API). Every gateway keeps the whole topic in memory (:mod:`gateway.issues.replica`), so
checking a submission's issue keys costs dictionary lookups, never a network call
(:mod:`gateway.issues.check`).
"""
