"""Run the scraper service: `python -m scraper`."""

from scraper.bootstrap import bootstrap
from scraper.settings import ScraperSettings
from servicekit.runtime import run

if __name__ == "__main__":
    run(bootstrap(ScraperSettings()))
