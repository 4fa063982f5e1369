"""Drive Debian's Chromium with Playwright for the web page's tests and screenshots.

Playwright never downloads a browser here: `make browser` installs Debian's Chromium, and
every launch names its executable.
"""

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

CHROMIUM = Path(os.environ.get("PRICESTREAM_CHROMIUM", "/usr/bin/chromium"))


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Launch headless Chromium (no sandbox: CI runs as root); always close it."""
    if not CHROMIUM.exists():
        raise FileNotFoundError(f"no Chromium at {CHROMIUM}: run `make browser` (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def watch_console(page: Page) -> list[str]:
    """Collect a page's console errors and uncaught exceptions, as they happen, into the list returned."""
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"{page.url}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
    return errors
