"""The e2e tier's stack: brought up through the CLI once, the demo story run on it, shared by every e2e test.

The web page's tests read the stack as the story left it; the CLI's tests then publish to it,
re-scrape, reset it and bring it down. So the web page's tests run before the CLI's.
"""

import subprocess
from collections.abc import Callable, Iterator

import pytest

from tests.e2e.cli import StoryStack, run_cli, up_cli
from testsupport import stack_config

WEB_TESTS = "test_web.py"
CLI_TESTS = "test_cli.py"


@pytest.fixture(scope="session")
def story_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoryStack]:
    """Bring a stack up with `pricestream up`, run `pricestream demo` on it; always bring it down after."""
    config = stack_config(tmp_path_factory.mktemp("e2e") / ".pricestream")
    try:
        up = _ran(lambda: up_cli(config))
        status = _ran(lambda: run_cli("status", config=config))
        # 16 simulated days with a short night after each: about 2 minutes on an idle machine,
        # several on one that runs other stacks too.
        demo = _ran(lambda: run_cli("demo", config=config, timeout=600))
        yield StoryStack(config, up, status, demo)
    finally:
        run_cli("down", config=config)


def _ran(command: Callable[[], subprocess.CompletedProcess[str]]) -> subprocess.CompletedProcess[str]:
    """Run a CLI command; one that ran out of time counts as failed, for the tests to say so."""
    try:
        return command()
    except subprocess.TimeoutExpired as slow:
        out, err = (
            part.decode() if isinstance(part, bytes) else part or "" for part in (slow.stdout, slow.stderr)
        )
        return subprocess.CompletedProcess(slow.cmd, -9, out, f"{err}\ntimed out after {slow.timeout:.0f} s")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move the web page's tests before the CLI's, which change and then bring down the shared stack."""
    web = [item for item in items if _in_e2e(item, WEB_TESTS)]
    rest = [item for item in items if not _in_e2e(item, WEB_TESTS)]
    at = next((i for i, item in enumerate(rest) if _in_e2e(item, CLI_TESTS)), None)
    if web and at is not None:
        items[:] = [*rest[:at], *web, *rest[at:]]


def _in_e2e(item: pytest.Item, file: str) -> bool:
    return item.path.name == file and item.path.parent.name == "e2e"
