"""Run the bargains service: `python -m bargains`."""

from bargains.bootstrap import bootstrap
from bargains.settings import BargainsSettings
from servicekit.runtime import run

if __name__ == "__main__":
    run(bootstrap(BargainsSettings()))
