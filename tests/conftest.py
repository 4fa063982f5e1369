"""Spread the suite over pytest-xdist workers without starting a stack twice.

`make test` runs `pytest -n 2 --dist loadgroup`: most of the integration and e2e time is
spent waiting on other processes, so two workers use the machine's cores. Tests that share
a running stack must land on one worker, or each worker would start its own: every module
on the session `stack` fixture forms one group, and a module that starts a stack of its
own (or drives the CLI's) forms a group of its own. Unit and contracts tests go anywhere.
"""

import pytest

# Modules that start a stack of their own: each is one group, so its stack starts once.
OWN_STACK = {"test_faults", "test_grouping", "test_cli"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put each integration or e2e module in the xdist group of the stack it uses."""
    for item in items:
        module = item.path.stem
        if module in OWN_STACK:
            item.add_marker(pytest.mark.xdist_group(module))
        elif "stack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("session-stack"))
