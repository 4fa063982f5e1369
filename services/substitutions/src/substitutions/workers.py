"""Background loops of the substitutions service."""

import asyncio
import contextlib

from substitutions.service_layer import Matcher


class MatcherLoader:
    """Load the matcher once the database is up, have it learn again when quiet, end its rebuilds."""

    name = "matcher-loader"

    def __init__(self, matcher: Matcher, *, retry_s: float = 1.0, quiet_s: float = 5.0) -> None:
        self.matcher = matcher
        self.retry_s = retry_s
        self.quiet_s = quiet_s

    async def run(self, stopping: asyncio.Event) -> None:
        """Load, retrying while the database is unreachable, until stopping."""
        while not stopping.is_set():
            try:
                await self.matcher.start()
                break
            except OSError:
                await asyncio.sleep(self.retry_s)
        # Then learn from what a bulk load brought since the last doubling, once it has ended.
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=min(1.0, self.quiet_s))
            if not stopping.is_set():
                self.matcher.relearn_if_quiet(quiet_s=self.quiet_s)
        await self.matcher.stop()
