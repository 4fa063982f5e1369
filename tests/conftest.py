"""Spread the suite over pytest-xdist workers (`make test`: `-n 2 --dist loadscope`), each stack started once.

A session-scoped stack is started by every worker that runs a test using it, so all tests of
one running stack must land on one worker. xdist's own `loadgroup` cannot say so here: it marks
a group in the test's node id, which pytest 9 no longer reads back. So `loadscope` is given a
scope of our own, worked out from the test's node id alone (the controller collects nothing):
the e2e tier is one scope (the story's stack; `bench` and `match`, which need none, one each),
the integration modules on the session's first stack are another, those on its second stack a
third, each module with a stack of its own is one, and every other module is its own scope.
The heaviest scopes are collected first, so that the long ones start at once, one per worker.
"""

import os
import signal
from typing import Any

import pytest

# pytest started in the background by a script inherits SIGINT ignored, and so would every process
# a test starts: the CLI's `logs --follow` test stops one with Ctrl-C, as an operator does.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
# An xdist worker starts with COLUMNS=80 and LINES=24 in its environment, which fixes the width of
# the CLI's consoles (made at import) at 80 columns: its tables then cut what tests look for.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for name in ("COLUMNS", "LINES"):
        os.environ.pop(name, None)

# Services inherit the environment. Bargains' 50 ms price polling is for a shopper's latency,
# which no test measures; idle, it cost each running stack about 3% of a core (bargains and the
# broker answering its polls), with two or three stacks up at once through the suite.
os.environ.setdefault("BARGAINS_FAST_PRICE_POLLING", "false")

E2E = "tests/e2e"
INTEGRATION = "tests/integration"
# Integration modules that start what they test on themselves (a stack, a broker): any other
# module of the tier shares one of the session's stacks and that stack's worker.
OWN_STACK = {"test_faults.py", "test_replicas.py", "test_scram.py"}
# The modules on the second stack (`second_stack`, tests/integration/conftest.py): a scope apart
# from the first stack's, so that whichever worker is free runs them (the first stack's tests
# alone kept one worker busy almost two minutes after the other had finished).
SECOND_STACK = {"test_grouping.py", "test_web_broker.py"}
# e2e tests that run on no shared stack (`bench` brings up a stack of its own): scopes of their own.
E2E_ALONE = ("test_bench_", "test_match_")

# Scopes by their time in a serial run (docs/benchmarks.md), longest first.
HEAVIEST = (
    "stacks",
    "e2e",
    "tests/integration/test_faults.py",
    "tests/integration/test_replicas.py",
    "second stack",
    "tests/quality/test_substitutions_quality.py",
)


def scope_of(nodeid: str) -> str:
    """Return the scope of a test: the running stack it shares with other modules, else its module."""
    path, _, name = nodeid.partition("::")
    folder, _, module = path.rpartition("/")
    if folder == E2E:
        return nodeid if name.startswith(E2E_ALONE) else "e2e"
    if folder == INTEGRATION and module in SECOND_STACK:
        return "second stack"
    if folder == INTEGRATION and module not in OWN_STACK:
        return "stacks"
    return path


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Collect the heaviest scopes first; each keeps its tests' order, which the tiers' conftests set."""
    rank = {scope: at for at, scope in enumerate(HEAVIEST)}
    items.sort(key=lambda item: rank.get(scope_of(item.nodeid), len(HEAVIEST)))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Schedule `--dist loadscope` by the scopes above, in the order collected."""
    if config.getvalue("dist") != "loadscope":
        return None
    # A worker gets its next scope when it has two tests left: in the order collected, heaviest
    # first, that is near the shortest schedule. xdist would otherwise order scopes by test count.
    config.option.loadscopereorder = False
    from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

    class StackScopeScheduling(LoadScopeScheduling):  # type: ignore[misc]
        """xdist's load-by-scope, with a running stack as one scope."""

        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

    return StackScopeScheduling(config, log)
