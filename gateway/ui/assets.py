"""The web view's files, read once from the package and served from memory.

Every file is served under ``/ui/static/<version>/``, where the version is a hash of all
of them: a page and the modules it imports always come from one release, so they can be
cached for a year (``immutable``). Only the page itself (``/ui/``) is revalidated on every
load, by its ETag.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from types import MappingProxyType

__all__ = ["Asset", "Assets", "load_assets"]

CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".html": "text/html; charset=utf-8",
}
INDEX = "index.html"
#: Where the page names its version; the only templating the web view has.
VERSION_MARK = b"{{version}}"


@dataclass(frozen=True, slots=True)
class Asset:
    """One file as sent: its bytes, media type and entity tag."""

    body: bytes
    content_type: str
    etag: str

    @classmethod
    def of(cls, body: bytes, content_type: str) -> Asset:
        """The asset of ``body``, tagged by its content."""
        return cls(body, content_type, f'"{hashlib.sha256(body).hexdigest()[:20]}"')


@dataclass(frozen=True, slots=True)
class Assets:
    """The page, its files by relative name (``views/board.js``), and their version."""

    version: str
    index: Asset
    files: Mapping[str, Asset]


def _walk(folder: Traversable, prefix: str = "") -> Iterator[tuple[str, Traversable]]:
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            yield from _walk(entry, f"{prefix}{entry.name}/")
        elif entry.is_file():
            yield f"{prefix}{entry.name}", entry


def load_assets(folder: Traversable | None = None) -> Assets:
    """Read the web view's files (``gateway/ui/static`` unless ``folder`` is given)."""
    root = folder or resources.files("gateway.ui").joinpath("static")
    found: dict[str, tuple[bytes, str]] = {}
    digest = hashlib.sha256()
    for name, entry in _walk(root):
        suffix = name[name.rfind(".") :]
        if suffix not in CONTENT_TYPES:
            continue
        body = entry.read_bytes()
        found[name] = (body, CONTENT_TYPES[suffix])
        digest.update(name.encode() + b"\0" + hashlib.sha256(body).digest())
    if INDEX not in found:
        msg = f"the web view has no {INDEX}"
        raise FileNotFoundError(msg)
    version = digest.hexdigest()[:12]
    page, page_type = found.pop(INDEX)
    return Assets(
        version,
        Asset.of(page.replace(VERSION_MARK, version.encode()), page_type),
        MappingProxyType({name: Asset.of(body, kind) for name, (body, kind) in found.items()}),
    )
