"""Run the `pricestream` CLI as an operator would, against the e2e tier's stack or a stack of a test's own."""

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from pricestream.config import StackConfig
from pricestream.stack import Stack

CLI = str(Path(sys.executable).with_name("pricestream"))

# A smaller simulated world than the default, so the 16-day story fits the tests' time.
WORLD = {"PRICESTREAM_WORLD_STORES_PER_CHAIN": "12", "PRICESTREAM_WORLD_PRODUCTS_PER_CHAIN": "120"}


def run_cli(*args: str, config: StackConfig, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run one CLI command on the stack at `config.home`; return what it printed and its exit code."""
    env = {**os.environ, "COLUMNS": "200", **WORLD}
    argv = [CLI, *args, "--home", str(config.home)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)


def up_cli(config: StackConfig, broker_port: int | None = None) -> subprocess.CompletedProcess[str]:
    """Run `pricestream up` on the config's ports (or another broker port)."""
    ports = {
        "--broker-port": broker_port or config.broker_port,
        "--postgres-port": config.postgres_port,
        "--http-port-base": config.http_port_base,
        "--storefront-port": config.storefront_port,
    }
    return run_cli("up", *(str(part) for pair in ports.items() for part in pair), config=config)


@dataclass(frozen=True)
class StoryStack:
    """The e2e stack and what `up`, `status` and `demo` printed when it was brought up."""

    config: StackConfig
    up: subprocess.CompletedProcess[str]
    status: subprocess.CompletedProcess[str]
    demo: subprocess.CompletedProcess[str]

    def stack(self) -> Stack:
        """Return the running stack, as its saved config describes it."""
        return Stack(StackConfig.load(self.config.home))
