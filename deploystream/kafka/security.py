"""A broker that speaks only SASL_SSL to clients and enforces ACLs (the tests' secure broker).

SCRAM-SHA-512 users are created when the storage is formatted (``kafka-storage format
--add-scram``); TLS material is generated at start (:mod:`deploystream.kafka.tls`); the
controller listener runs mutual TLS, so no listener accepts an unauthenticated client; the
StandardAuthorizer denies whatever no ACL allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["BROKER_PRINCIPAL", "BrokerSecurity"]

#: The principal the broker's own certificate authenticates as (``User:CN=...``).
BROKER_PRINCIPAL = "User:CN=deploystream-broker"


@dataclass(frozen=True)
class BrokerSecurity:
    """A broker that speaks only SASL_SSL (SCRAM-SHA-512) to clients, with ACLs enforced.

    ``users`` (name -> password) get SCRAM credentials when the storage is formatted;
    ``admin`` is one of them, a super user the broker also uses for itself. ``tls_dir``
    receives a throwaway CA (``ca.pem``, for clients) and the broker's certificate.
    """

    users: dict[str, str]
    tls_dir: Path
    admin: str = "admin"

    def properties(self, broker_pem: Path, ca_pem: Path) -> str:
        """The security part of server.properties."""
        password = self.users[self.admin]
        jaas = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{self.admin}" password="{password}";'
        )
        return "\n".join(
            [
                "",
                "# ---- security: SASL_SSL (SCRAM-SHA-512) for clients, mTLS for the controller",
                "sasl.enabled.mechanisms=SCRAM-SHA-512",
                "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
                f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={jaas}",
                "ssl.keystore.type=PEM",
                f"ssl.keystore.location={broker_pem}",
                "ssl.truststore.type=PEM",
                f"ssl.truststore.location={ca_pem}",
                "listener.name.controller.ssl.client.auth=required",
                "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                f"super.users=User:{self.admin};{BROKER_PRINCIPAL}",
                "allow.everyone.if.no.acl.found=false",
                "",
            ]
        )

    def scram_arguments(self) -> list[str]:
        """``kafka-storage format`` arguments creating every user's SCRAM credentials."""
        arguments = []
        for name, password in self.users.items():
            arguments += ["--add-scram", f"SCRAM-SHA-512=[name={name},password={password}]"]
        return arguments

    def client_config(self, bootstrap: str, user: str | None = None) -> dict[str, str]:
        """confluent-kafka options to reach the broker as ``user`` (default: the admin)."""
        name = user or self.admin
        return {
            "bootstrap.servers": bootstrap,
            "security.protocol": "sasl_ssl",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": name,
            "sasl.password": self.users[name],
            "ssl.ca.location": str(self.tls_dir / "ca.pem"),
        }
