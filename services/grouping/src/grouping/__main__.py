"""Run the grouping service: `python -m grouping`."""

from grouping.bootstrap import bootstrap
from grouping.settings import GroupingSettings
from servicekit.runtime import run

if __name__ == "__main__":
    run(bootstrap(GroupingSettings()))
