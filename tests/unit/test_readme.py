"""The README documents every setting the services read."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from deploystream.kafka.acls import kafka_acls_commands, service_acls
from gateway.settings import GatewaySettings
from streams.settings import WorkerSettings

README = (Path(__file__).parents[2] / "README.md").read_text()


@pytest.mark.parametrize("settings", [GatewaySettings, WorkerSettings])
def test_every_setting_is_documented_in_the_readme(settings: type[BaseSettings]) -> None:
    missing = [
        f"DEPLOYSTREAM_{name.upper()}"
        for name in settings.model_fields
        if f"`DEPLOYSTREAM_{name.upper()}`" not in README
    ]
    assert missing == []


def test_the_readme_lists_the_acls_deploystream_kafka_acls_prints() -> None:
    commands = kafka_acls_commands(service_acls("deploystream-gateway", "deploystream-worker"))
    for line in commands.splitlines():
        assert line in README, line
