"""Run the substitutions service: `python -m substitutions`."""

from substitutions.bootstrap import bootstrap
from substitutions.settings import SubstitutionsSettings
from servicekit.runtime import run

if __name__ == "__main__":
    run(bootstrap(SubstitutionsSettings()))
