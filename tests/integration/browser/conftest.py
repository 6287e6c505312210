"""A real browser (Debian's Chromium, driven by Playwright) against the real
server on loopback. Never run `playwright install`: it downloads a browser."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
MISSING = (f"{CHROMIUM} is missing: install Debian's Chromium with `make chromium` "
           "(apt-get update && apt-get install -y chromium); do not run `playwright install`.")

# Answers stream in block by block: `expect` retries up to this long (ms) instead of sleeping.
expect.set_options(timeout=30_000)


@pytest.fixture(scope="session", autouse=True)
def chromium_installed():
    """Runs before the server and the browser: fail in CI, skip elsewhere."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(MISSING, pytrace=False)
        pytest.skip(MISSING)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1280, "height": 900}}  # room for the screenshot


