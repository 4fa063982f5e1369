"""Run the catalogue service: `python -m catalogue`."""

from catalogue.bootstrap import bootstrap
from catalogue.settings import CatalogueSettings
from servicekit.runtime import run

if __name__ == "__main__":
    run(bootstrap(CatalogueSettings()))
