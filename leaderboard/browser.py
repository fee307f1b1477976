"""Headless Chromium from the system's packages, driven by Python playwright, for the page's browser test
and for screenshots of a built leaderboard (docs/leaderboard.png).

Never `playwright install`: this uses the distribution's /usr/bin/chromium (`make browser` installs it),
and fails with a clear message when it is absent.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from newtonbench.errors import MissingDependencyError, NewtonBenchError

# No network, no GPU, no first-run UI: the page must work offline from file://.
CHROMIUM_ARGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


@contextlib.contextmanager
def open_page(index_html: str | Path, width: int = 1280, height: int = 900) -> Iterator[object]:
    """A playwright Page showing `index_html` from disk, once its script has drawn everything.

    Script errors on the page are raised, not ignored.
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise MissingDependencyError("playwright", "dev", "driving headless Chromium") from None
    exe = chromium_path()
    if exe is None:
        raise NewtonBenchError("chromium not found; install it with `make browser` (Debian's chromium package)")
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="newtonbench-chromium-") as profile, sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            profile, executable_path=exe, args=list(CHROMIUM_ARGS), headless=True,
            viewport={"width": width, "height": height},
        )
        try:
            page = ctx.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(Path(index_html).resolve().as_uri())
            page.wait_for_selector("body[data-ready='1']", timeout=10_000)
            if errors:
                raise NewtonBenchError(f"{index_html}: script error: {errors[0]}")
            yield page
        finally:
            ctx.close()


def screenshot(index_html: str | Path, png: str | Path, width: int = 1280) -> Path:
    """Save a full-page screenshot of a built leaderboard."""
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    with open_page(index_html, width=width) as page:
        page.screenshot(path=str(png), full_page=True)
    return png
