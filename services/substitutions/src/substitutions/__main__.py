"""Run the substitutions service: `python -m substitutions`."""

from servicekit.runtime import run
from substitutions.bootstrap import bootstrap
from substitutions.settings import SubstitutionsSettings

if __name__ == "__main__":
    run(bootstrap(SubstitutionsSettings()))
