"""Reproducible installs: every dependency locked with hashes and installed from the lock,
floors above known advisories, and the broker's jars checked against pinned sums."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from deploystream.kafka.broker import BrokerError
from deploystream.kafka.jars import pinned_sums, verify_libs

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCKS = {name: ROOT / "requirements" / f"{name}.lock" for name in ("dev", "runtime")}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lock: Path) -> dict[str, tuple[Version, list[str]]]:
    """name -> (pinned version, its hashes)."""
    found: dict[str, tuple[Version, list[str]]] = {}
    for block in re.split(r"\n(?=\S)", lock.read_text()):
        head = re.match(r"([A-Za-z0-9_.\-]+)==([^\s;\\]+)", block)
        if head:
            found[normalise(head[1])] = (
                Version(head[2]),
                re.findall(r"sha256:[0-9a-f]{64}", block),
            )
    return found


def declared(extra: str | None) -> list[Requirement]:
    requirements = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    if extra:
        requirements += [
            Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"][extra]
        ]
    requirements += [Requirement(r) for r in PYPROJECT["build-system"]["requires"]]
    return requirements


@pytest.mark.parametrize(("lock", "extra"), [("dev", "dev"), ("runtime", None)])
def test_the_lock_pins_every_declared_dependency_within_its_range(
    lock: str, extra: str | None
) -> None:
    # Fails when pyproject.toml changed without `make lock`.
    locked = pins(LOCKS[lock])
    for requirement in declared(extra):
        name = normalise(requirement.name)
        assert name in locked, f"{name} is not in {lock}.lock: run `make lock`"
        version, _ = locked[name]
        assert requirement.specifier.contains(version, prereleases=True), (name, version)


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_locked_package_has_hashes(lock: str) -> None:
    locked = pins(LOCKS[lock])
    assert len(locked) > 20
    assert [name for name, (_, hashes) in locked.items() if not hashes] == []


def test_the_runtime_lock_agrees_with_the_dev_lock() -> None:
    dev, runtime = pins(LOCKS["dev"]), pins(LOCKS["runtime"])
    assert {n: v for n, (v, _) in runtime.items()} == {n: dev[n][0] for n in runtime}


#: First fixed releases of advisories on our direct dependencies (see pyproject.toml).
ADVISORIES = {
    "aiohttp": ("3.14.3", "GHSA-cq5v-8q36-5273, GHSA-mfx4-hv73-q22v (request smuggling)"),
    "pyjwt": ("2.13.0", "CVE-2026-48526 (forged JWTs), PYSEC-2026-175..179"),
    "orjson": ("3.9.15", "CVE-2024-27454"),
    "setuptools": ("78.1.1", "CVE-2025-47273"),
    "cryptography": ("49.0.0", "GHSA-537c-gmf6-5ccf"),
}


@pytest.mark.parametrize("name", sorted(ADVISORIES))
def test_dependency_floors_exclude_versions_with_known_advisories(name: str) -> None:
    fixed, advisory = ADVISORIES[name]
    requirements = [r for r in declared("dev") if normalise(r.name) == name]
    assert requirements, name
    for requirement in requirements:
        floors = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
        assert floors, f"{name} needs a floor ({advisory})"
        assert max(floors) >= Version(fixed), f"{requirement}: {advisory} is fixed in {fixed}"


def test_make_installs_only_from_the_lock_with_hashes() -> None:
    makefile = (ROOT / "Makefile").read_text()
    installs = [line for line in makefile.splitlines() if "pip install" in line]
    assert installs
    for line in installs:
        assert "--require-hashes" in line or ("--no-deps" in line and "-e ." in line), line
    assert re.search(r"^lock:", makefile, re.M), "`make lock` regenerates the locks"
    assert "--upgrade pip" not in makefile


def test_the_image_installs_only_from_the_runtime_lock_with_hashes() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    installs = [line for line in dockerfile.splitlines() if "pip install" in line]
    assert any("--require-hashes" in line and "runtime.lock" in line for line in installs)
    assert all("--require-hashes" in line or "--no-deps" in line for line in installs), installs


def jars(folder: Path, contents: dict[str, bytes]) -> dict[str, str]:
    import hashlib  # noqa: PLC0415

    folder.mkdir()
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    return {name: hashlib.sha256(data).hexdigest() for name, data in contents.items()}


def test_the_pinned_jar_set_matches_the_real_one() -> None:
    sums = pinned_sums()
    assert len(sums) == 46
    assert all(re.fullmatch(r"[0-9a-f]{64}", digest) for digest in sums.values())
    assert "kafka_2.13-4.1.2.jar" in sums


def test_jars_matching_their_pinned_sums_pass(tmp_path: Path) -> None:
    pinned = jars(tmp_path / "libs", {"a.jar": b"a", "b.jar": b"b"})
    verify_libs(tmp_path / "libs", pinned)


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda libs: (libs / "a.jar").write_bytes(b"tampered"), "checksum mismatch ['a.jar']"),
        (lambda libs: (libs / "b.jar").unlink(), "missing ['b.jar']"),
        (lambda libs: (libs / "evil.jar").write_bytes(b"x"), "unexpected ['evil.jar']"),
    ],
)
def test_a_jar_set_that_differs_from_the_pins_is_refused_loudly(
    tmp_path: Path, change: object, complaint: str
) -> None:
    pinned = jars(tmp_path / "libs", {"a.jar": b"a", "b.jar": b"b"})
    change(tmp_path / "libs")  # type: ignore[operator]
    with pytest.raises(BrokerError) as raised:
        verify_libs(tmp_path / "libs", pinned)
    assert complaint in str(raised.value)


def test_a_tampered_cache_is_refused_before_the_broker_runs(tmp_path: Path) -> None:
    from deploystream.kafka.jars import KAFKA_VERSION, ensure_libs  # noqa: PLC0415

    libs = tmp_path / KAFKA_VERSION / "libs"
    libs.mkdir(parents=True)
    (libs / ".complete").write_text(KAFKA_VERSION)
    for name in pinned_sums():
        (libs / name).write_bytes(b"not the real jar")
    with pytest.raises(BrokerError, match="checksum mismatch"):
        ensure_libs(tmp_path)
