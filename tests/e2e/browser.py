"""Debian's Chromium driven by Playwright: the browser of the web view's tests.

Playwright's own browser downloads are never used (no ``playwright install``): `make browser`
installs the distribution's package, and every launch gets a fresh profile and flags that
keep the browser from calling anywhere but the page under test.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext, ConsoleMessage, Page, Request, sync_playwright

DEBIAN_CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium_path() -> str:
    """The system Chromium; an error that says how to get it otherwise."""
    found = shutil.which("chromium") or DEBIAN_CHROMIUM
    if not Path(found).exists():
        msg = f"no Chromium at {found}: `make browser` installs Debian's package"
        raise RuntimeError(msg)
    return found


@contextmanager
def chromium(profile: Path, **options: Any) -> Iterator[BrowserContext]:
    """A headless Chromium with a fresh profile in ``profile`` (Playwright passes it as
    ``--user-data-dir``), closed on exit."""
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=chromium_path(),
            headless=True,
            args=list(FLAGS),
            **options,
        )
        try:
            yield context
        finally:
            context.close()


@dataclass
class Watched:
    """A page, and what it did: console errors (CSP violations among them), uncaught
    exceptions, and every URL it requested."""

    page: Page
    errors: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, context: BrowserContext) -> Watched:
        watched = cls(context.new_page())

        def console(message: ConsoleMessage) -> None:
            if message.type == "error":
                watched.errors.append(message.text)

        def request(request: Request) -> None:
            watched.urls.append(request.url)

        watched.page.on("console", console)
        watched.page.on("pageerror", lambda error: watched.errors.append(str(error)))
        watched.page.on("request", request)
        return watched
