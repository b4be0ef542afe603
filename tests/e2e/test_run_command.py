"""`deploystream run` (what `make run` calls): one command brings up broker, worker and gateway,
prints working credentials, and a SIGTERM to its whole process group (what a terminal sends
on Ctrl-C) stops all three in order, quickly, without SIGKILL and without a traceback."""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from deploystream.kafka.broker import free_port


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            child = int(stat.parent.name)
            found |= {child} | _children(child)
    return found


def _listening(pids: set[int]) -> list[str]:
    """The local addresses of the TCP sockets in LISTEN state that ``pids`` hold."""
    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    addresses = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                address, port = fields[1].split(":")
                raw = bytes.fromhex(address)
                # /proc/net/tcp* print addresses as host-order 32-bit words.
                words = [raw[i : i + 4][::-1] for i in range(0, len(raw), 4)]
                ip = ipaddress.ip_address(b"".join(words))
                if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
                    ip = ip.ipv4_mapped  # the JVM listens on IPv4-mapped IPv6 sockets
                addresses.append(f"{ip}:{int(port, 16)}")
    return addresses


def test_run_starts_everything_prints_a_working_curl_and_stops_on_sigterm(tmp_path: Path) -> None:
    # The group is signalled as a terminal does: every process of it at once.
    ports = {"kafka": free_port(), "gateway": free_port(), "worker": free_port()}
    env = {k: v for k, v in os.environ.items() if k != "DEPLOYSTREAM_KAFKA_BOOTSTRAP"}
    env["DEPLOYSTREAM_DEV_SECRET"] = "chosen-dev-secret-0123456789abcdef0123"
    log = (tmp_path / "run.log").open("w+b")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "deploystream",
            "run",
            "--kafka-port",
            str(ports["kafka"]),
            "--gateway-port",
            str(ports["gateway"]),
            "--worker-port",
            str(ports["worker"]),
            "--var-dir",
            str(tmp_path / "var"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        output = ""
        while "Ctrl-C stops everything" not in output:
            assert process.poll() is None, output
            assert time.monotonic() < deadline, output
            time.sleep(0.5)
            output = (tmp_path / "run.log").read_text()
        assert "chosen-dev-secret-0123456789abcdef0123" in output
        curl = re.search(r"curl -sS -u (\S+):(\S+) -X POST (\S+)", output)
        assert curl is not None, output
        user, secret, url = curl.groups()
        body = {
            "deployments": [
                {
                    "deploymentSequenceNumber": 1,
                    "updateSequenceNumber": 1,
                    "displayName": "d",
                    "url": "https://x",
                    "description": "d",
                    "lastUpdated": "2026-01-01T00:00:00Z",
                    "state": "successful",
                    "issueKeys": ["A-1"],
                    "pipeline": {"id": "web", "displayName": "w", "url": "https://w"},
                    "environment": {"id": "prod", "displayName": "p", "type": "production"},
                }
            ]
        }
        assert httpx.post(url, json=body, auth=(user, secret), timeout=30).status_code == 202
        token = subprocess.run(
            [
                sys.executable,
                "-m",
                "deploystream",
                "token",
                "--url",
                f"http://127.0.0.1:{ports['gateway']}",
                "--var-dir",
                str(tmp_path / "var"),
            ],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout.strip()
        lookup = url.replace("/bulk", "/pipelines/web/environments/prod/deployments/1")
        found = httpx.get(lookup, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        for _ in range(100):
            if found.status_code == 200:
                break
            time.sleep(0.1)
            found = httpx.get(lookup, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert found.status_code == 200
        children = _children(process.pid)
        assert len(children) >= 3  # java, worker, gateway
        # Every listener of broker, controller, registry, worker and gateway is on loopback only.
        listeners = _listening(children | {process.pid})
        assert len(listeners) >= 4, listeners
        assert [a for a in listeners if a.startswith("127.0.0.1:")] == listeners
        started = time.monotonic()
        os.killpg(process.pid, signal.SIGTERM)
        assert process.wait(60) == 0
        assert time.monotonic() - started < 15
        time.sleep(1)
        alive = [
            pid
            for pid in children
            if Path(f"/proc/{pid}").exists()
            and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
        ]
        assert alive == [], "processes outlived `deploystream run`"
        output = (tmp_path / "run.log").read_text()
        order = [
            re.search(rf"{name} stopped \(exit (\d+)\)", output) for name in ("gateway", "worker-0")
        ]
        assert all(order), output[-3000:]
        assert [m.group(1) for m in order if m] == ["0", "0"], output[-3000:]
        assert output.index("gateway stopped") < output.index("worker-0 stopped")
        assert "killing it" not in output
        for service_log in [tmp_path / "run.log", *(tmp_path / "var" / "logs").glob("*.log")]:
            assert "Traceback" not in service_log.read_text(errors="replace"), service_log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
