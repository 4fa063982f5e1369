"""The operator CLI end to end: up, status, demo, topics, up again, port clash, down."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts import SERVICES
from pricestream.config import StackConfig
from tests.helpers import stack_config

pytestmark = pytest.mark.e2e

CLI = str(Path(sys.executable).with_name("pricestream"))


def _run(*args: str, config: StackConfig, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    argv = [CLI, *args, "--home", str(config.home)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackConfig]:
    """Ports and home of the stack this module drives through the CLI; always brought down."""
    config = stack_config(tmp_path_factory.mktemp("e2e") / ".pricestream")
    yield config
    _run("down", config=config)


def test_up_status_demo_topics_down(config: StackConfig) -> None:
    up = _run(
        "up",
        "--broker-port",
        str(config.broker_port),
        "--postgres-port",
        str(config.postgres_port),
        "--http-port-base",
        str(config.http_port_base),
        config=config,
    )
    assert up.returncode == 0, up.stdout + up.stderr
    for name in SERVICES:
        assert f"http://127.0.0.1:{config.service_port(name)}" in up.stdout

    status = _run("status", config=config)
    assert status.returncode == 0, status.stdout
    assert status.stdout.count("healthy") == 2 + len(SERVICES)

    demo = _run("demo", "--stores", "8", config=config)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "prices.scraped.v1" in demo.stdout
    print(demo.stdout)

    lag = _run("status", config=config)
    assert "consumer groups" in lag.stdout
    rows = [
        [cell.strip() for cell in line.split("│")]
        for line in lag.stdout.splitlines()
        if "prices.scraped" in line
    ]
    assert [(row[1], row[3], row[4], row[5]) for row in rows] == [
        ("grouping", "8", "8", "0"),
        ("bargains", "8", "8", "0"),
    ], lag.stdout

    topics = _run("topics", config=config)
    assert topics.returncode == 0
    assert "prices.scraped.v1.dlq" in topics.stdout

    again = _run("up", config=config)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already running" in again.stdout

    down = _run("down", config=config)
    assert down.returncode == 0
    for name in SERVICES:
        log = (config.home / "logs" / f"{name}.log").read_text()
        assert '"event": "service stopped"' in log, f"{name} did not drain on SIGTERM"
    after = _run("status", config=config)
    assert after.returncode == 1
    assert "DOWN" in after.stdout


def test_port_in_use_is_a_clear_error(config: StackConfig, tmp_path: Path) -> None:
    import socket

    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        clash = stack_config(tmp_path / ".pricestream")
        result = _run(
            "up",
            "--broker-port",
            str(port),
            "--postgres-port",
            str(clash.postgres_port),
            "--http-port-base",
            str(clash.http_port_base),
            config=clash,
        )
        _run("down", config=clash)
    assert result.returncode == 2
    assert f"port {port} for the broker is in use" in result.stdout
