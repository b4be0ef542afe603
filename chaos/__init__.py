"""deploystream's chaos runs: faults under steady load, checked against a reference model.

Scenarios (``chaos.scenarios``): SIGKILL the worker, SIGKILL the gateway mid-request, take
the broker away and bring it back. A load of seeded histories (``chaos.model``: out-of-order
and equal ``updateSequenceNumber``s, deletes by key and by properties) runs throughout; every
answer is recorded, and at the end every key is compared with what the acknowledged
operations allow, through lookups and by rebuilding the public state topic
(``chaos.verify``). The e2e tests (``tests/e2e/test_fault_*.py``) run short versions;
``make chaos`` (``python -m chaos``) runs long ones and writes JSON and Markdown results under
``chaos/results/``.
"""
