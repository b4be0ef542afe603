"""The web view's files: shipped with the package, versioned by content, every module import
resolvable, and no script with a path from data to HTML parsing."""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest

from gateway.ui.assets import CONTENT_TYPES, INDEX, load_assets
from gateway.ui.routes import CONTENT_SECURITY_POLICY, etag_matches

ROOT = Path(__file__).parents[2]
STATIC = ROOT / "gateway" / "ui" / "static"
SCRIPTS = sorted(STATIC.rglob("*.js"))
# Sinks that parse a string as HTML or code; the web view builds nodes and sets text only.
SINKS = re.compile(
    r"\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function\("
    r"|setAttribute\(\s*['\"](on|href|src|style)|\.srcdoc|createContextualFragment"
)
IMPORT = re.compile(r"""(?:from|import\()\s*['"](\.{1,2}/[^'"]+)['"]""")


def test_every_file_of_the_web_view_is_in_the_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["gateway.ui"]
    files = [p.relative_to(STATIC.parent).as_posix() for p in STATIC.rglob("*") if p.is_file()]
    assert files
    missing = [f for f in files if not any(fnmatch(f, pattern) for pattern in patterns)]
    assert missing == []
    assert all(Path(f).suffix in CONTENT_TYPES for f in files), "a file the gateway would not serve"


def test_the_page_names_this_version_and_only_files_that_exist() -> None:
    assets = load_assets()
    page = assets.index.body.decode()
    assert "{{version}}" not in page
    referenced = re.findall(r'(?:src|href)="/ui/static/([0-9a-f]{12})/([^"]+)"', page)
    assert referenced
    assert {version for version, _ in referenced} == {assets.version}
    assert all(name in assets.files for _, name in referenced)
    assert INDEX not in assets.files


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.relative_to(STATIC).as_posix())
def test_module_imports_resolve_to_shipped_files(script: Path) -> None:
    for target in IMPORT.findall(script.read_text()):
        assert (script.parent / target).resolve().is_file(), f"{script.name} imports {target}"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.relative_to(STATIC).as_posix())
def test_no_script_parses_strings_as_html_or_code(script: Path) -> None:
    assert SINKS.findall(script.read_text()) == []


def test_only_the_link_helper_sets_a_link_target() -> None:
    setters = [p.name for p in SCRIPTS if re.search(r"\.href\s*=[^=]", p.read_text())]
    assert setters == ["dom.js"]


def test_the_version_changes_with_any_file_and_only_then(tmp_path: Path) -> None:
    for source in STATIC.rglob("*"):
        if source.is_file():
            target = tmp_path / source.relative_to(STATIC)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    first, again = load_assets(tmp_path), load_assets(tmp_path)
    assert first.version == again.version == load_assets().version
    style = tmp_path / "app.css"
    style.write_text(style.read_text() + "\n/* changed */\n")
    changed = load_assets(tmp_path)
    assert changed.version != first.version
    assert changed.files["app.css"].etag != first.files["app.css"].etag
    assert changed.files["app.js"].etag == first.files["app.js"].etag


def test_if_none_match_accepts_lists_weak_tags_and_star() -> None:
    assert etag_matches('"abc"', '"abc"')
    assert etag_matches('"x", W/"abc"', '"abc"')
    assert etag_matches("*", '"abc"')
    assert not etag_matches('"abd"', '"abc"')
    assert not etag_matches(None, '"abc"')


def test_the_policy_allows_nothing_inline_and_no_framing() -> None:
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["require-trusted-types-for"] == "'script'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY


def _luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two ``#rrggbb`` colours."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_every_state_colour_keeps_text_readable() -> None:
    css = (STATIC / "app.css").read_text()
    variables = dict(re.findall(r"--([a-z]+): (#[0-9a-f]{6});", css.split("}", 1)[0]))
    states = re.findall(
        r"\.state-([a-z_]+) \{\s*--tint: (#[0-9a-f]{6});\s*--strong: (#[0-9a-f]{6});\s*\}", css
    )
    assert {name for name, _, _ in states} == {
        "successful",
        "failed",
        "in_progress",
        "pending",
        "cancelled",
        "rolled_back",
        "unknown",
    }
    for _, tint, strong in states:
        # The state's word, links, body and secondary text on the state's tint: WCAG AA.
        for text in (strong, variables["link"], variables["ink"], variables["muted"]):
            assert contrast(text, tint) >= 4.5, (text, tint)
    assert contrast(variables["muted"], variables["wash"]) >= 4.5
    assert contrast("#ffffff", variables["brand"]) >= 4.5
