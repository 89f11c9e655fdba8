"""Regenerate docs/authorize.png: `.venv/bin/python -m tests.browser.screenshot`.

Starts the demo (`jwtauth serve` with the fixtures and a throwaway key) and photographs the
old README's authorize URL in Debian's Chromium.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

from playwright.sync_api import sync_playwright

from jwtauth.cli import keyfolder
from tests.chromium import launch
from tests.helpers import README_QUERY, ROOT
from tests.support import running_server

OUTPUT = ROOT / "docs" / "authorize.png"


def main() -> None:
    """Take the screenshot and write it to docs/authorize.png."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        keyfolder.ensure(directory / "keys", "ES256", now=time.time(), retire_after=960)
        with running_server(keys_dir=directory / "keys", log_dir=directory) as server, sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page(
                viewport={"width": 640, "height": 800}, device_scale_factor=2, reduced_motion="reduce"
            )
            page.goto(f"{server.base}/authorize/?{urlencode(README_QUERY)}")
            page.get_by_label("Email or username").fill("testuser@example.com")
            page.get_by_label("Password").fill("testpassword")
            page.get_by_label("Password").blur()
            OUTPUT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(OUTPUT))
            browser.close()
    print(f"wrote {OUTPUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
