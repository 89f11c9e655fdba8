"""Debian's Chromium for the browser tests (never a browser downloaded by a test tool)."""

from __future__ import annotations

from typing import Any

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps dialling out of this closed network.
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def launch(playwright: Any) -> Any:
    """Start Debian's Chromium through Playwright."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
