"""`pricestream bench` brings its stack down when stopped by `kill` as when stopped by Ctrl-C."""

import os
import signal

import pytest

from pricestream.bench import terminated_as_interrupted

pytestmark = pytest.mark.unit


def _killed_inside(cleaned_up: list[bool]) -> None:
    """Send this process SIGTERM inside the block, as `kill` would in the middle of a bench."""
    with terminated_as_interrupted():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            pytest.fail("SIGTERM did not interrupt the block")
        finally:
            cleaned_up.append(True)  # where run_bench brings the stack down


def test_sigterm_inside_the_bench_interrupts_it_and_the_old_handler_returns_after() -> None:
    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        cleaned_up: list[bool] = []
        with pytest.raises(KeyboardInterrupt):
            _killed_inside(cleaned_up)
        assert cleaned_up == [True]
        assert not seen, "the bench's handler, not the previous one, took the signal inside"
        os.kill(os.getpid(), signal.SIGTERM)
        assert seen == [signal.SIGTERM], "the previous handler is back after the block"
    finally:
        signal.signal(signal.SIGTERM, previous)
