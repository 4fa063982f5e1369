"""Screenshots of the web page's main pages on the demo's world, for docs/ and the README.

Runs against the stack `make demo` left up (or the one at --home), in Debian's Chromium: it
chooses one anchor store per chain, opens the best bargain's product, puts it in the basket,
and saves each page (and the product on a phone's screen) as a PNG.

    make demo && .venv/bin/python -m benchmarks.web_screenshots
"""

import argparse
from pathlib import Path

from playwright.sync_api import Page, ViewportSize
from rich.console import Console

from benchmarks.web_pages import demo_sample
from testsupport.browser import chromium, watch_console

DESKTOP: ViewportSize = {"width": 1100, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
MAX_HEIGHT = 2400


def main() -> None:
    """Save the screenshots; fail if a page answers an error or logs one to its console."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, default=None, help="The stack's home (default: the project's)")
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    args = parser.parse_args()
    console = Console()
    sample = demo_sample(args.home)
    args.out.mkdir(parents=True, exist_ok=True)
    pages = sample.pages()
    shots = {
        "home": pages["home"],
        "search": pages["search"],
        "product": pages["product"],
        "bargains": pages["bargains"],
        "basket": pages["basket"],
        "groups": pages["groups"],
        "pipeline": pages["pipeline"],
    }
    with chromium() as browser:
        desktop = browser.new_page(viewport=DESKTOP)
        phone = browser.new_page(viewport=PHONE)
        errors = watch_console(desktop) + watch_console(phone)
        for shot, path in shots.items():
            _shoot(desktop, sample.base + path, args.out / f"{shot}.png", console)
        _shoot(phone, sample.base + pages["product"], args.out / "product-phone.png", console)
    if errors:
        raise SystemExit("console errors:\n" + "\n".join(errors))


def _shoot(page: Page, url: str, file: Path, console: Console) -> None:
    """Open a page and save it; a page that answers an error stops the run."""
    response = page.goto(url)
    if response is None or not response.ok:
        raise SystemExit(f"{url} answered {response.status if response else 'nothing'}")
    # The whole page, up to a few screens: a long list (200 bargains) would make a file of megabytes.
    height = min(int(page.evaluate("document.documentElement.scrollHeight")), MAX_HEIGHT)
    width = page.viewport_size["width"] if page.viewport_size else DESKTOP["width"]
    page.screenshot(path=str(file), full_page=True, clip={"x": 0, "y": 0, "width": width, "height": height})
    console.print(f"{file}  ({url})")


if __name__ == "__main__":
    main()
