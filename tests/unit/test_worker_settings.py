"""What a worker advertises to its peers: the URL they forward lookups to."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from streams.settings import WorkerSettings


def test_advertised_url_defaults_to_the_bound_host_and_port() -> None:
    settings = WorkerSettings(worker_host="127.0.0.1", worker_port=6067)
    assert settings.advertised_url == "http://127.0.0.1:6067"


def test_ipv6_host_is_bracketed_in_the_advertised_url() -> None:
    assert WorkerSettings(worker_host="::1", worker_port=1).advertised_url == "http://[::1]:1"


def test_explicit_worker_url_wins() -> None:
    settings = WorkerSettings(worker_host="0.0.0.0", worker_url="http://worker:6066/")
    assert settings.advertised_url == "http://worker:6066"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", ""])
def test_binding_every_address_without_a_worker_url_is_refused(host: str) -> None:
    # Peers would forward lookups to http://0.0.0.0:port, i.e. to themselves.
    with pytest.raises(ValidationError, match="DEPLOYSTREAM_WORKER_URL"):
        WorkerSettings(worker_host=host)


def test_state_topic_defaults_to_deployments_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEPLOYSTREAM_STATE_TOPIC", raising=False)
    assert WorkerSettings().state_topic == "deployments-state"
