"""Background loops of the substitutions service."""

import asyncio

from substitutions.service_layer import Matcher


class MatcherLoader:
    """Load the model and the catalogue once the database is up; at the stop, end the matcher's rebuilds."""

    name = "matcher-loader"

    def __init__(self, matcher: Matcher, *, retry_s: float = 1.0) -> None:
        self.matcher = matcher
        self.retry_s = retry_s

    async def run(self, stopping: asyncio.Event) -> None:
        """Load, retrying while the database is unreachable, until stopping."""
        while not stopping.is_set():
            try:
                await self.matcher.start()
                break
            except OSError:
                await asyncio.sleep(self.retry_s)
        await stopping.wait()
        await self.matcher.stop()
