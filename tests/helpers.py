"""Small helpers shared by the test tiers."""

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from contracts import SERVICES
from pricestream.config import StackConfig
from pricestream.stack import Stack


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_range(count: int) -> int:
    """Return the first of `count` consecutive free ports."""
    for _ in range(200):
        base = free_port()
        if base + count > 65535:
            continue
        try:
            socks = []
            for port in range(base, base + count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no range of free ports found")


def stack_config(home: Path) -> StackConfig:
    """Return a stack config on free ports with its state in `home`."""
    return StackConfig(
        home=home,
        broker_port=free_port(),
        postgres_port=free_port(),
        http_port_base=free_port_range(len(SERVICES)),
        storefront_port=free_port(),
    )


def wait_until(predicate: Callable[[], bool], *, timeout: float = 30.0, interval: float = 0.2) -> bool:
    """Poll until `predicate` is true; return whether it became true in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@contextlib.contextmanager
def running_stack(home: Path, label: str) -> Iterator[Stack]:
    """Bring a whole stack up on free ports under `home`; always bring it down after."""
    stack = Stack(stack_config(home))
    try:
        stack.up(report=lambda line: print(f"[{label}] {line}"))
        yield stack
    finally:
        stack.down(report=lambda line: print(f"[{label}] {line}"))
