"""Assemble the substitutions service from its settings: model, catalogue, handlers, API."""

import asyncio
from importlib.resources import files
from pathlib import Path

from servicekit.kit import declare_publishers, make_parts
from servicekit.outbox import OutboxRelay
from servicekit.service import Service
from substitutions.api import build_api
from substitutions.embeddings import SentenceEncoder
from substitutions.handlers import build_router
from substitutions.matcher import Matcher
from substitutions.settings import SubstitutionsSettings, policy_from

MIGRATIONS = Path(str(files("substitutions") / "migrations"))


class MatcherLoader:
    """Load the model and the catalogue once the database is up, then stay out of the way."""

    name = "matcher-loader"

    def __init__(self, matcher: Matcher) -> None:
        self.matcher = matcher

    async def run(self, stopping: asyncio.Event) -> None:
        """Load, retrying while the database is unreachable, until stopping."""
        while not stopping.is_set():
            try:
                await self.matcher.start()
                break
            except OSError:
                await asyncio.sleep(1.0)
        await stopping.wait()


def bootstrap(settings: SubstitutionsSettings) -> Service:
    """Wire the substitutions service; nothing connects or loads until the service starts."""
    broker, db, metrics = make_parts(settings, migrations=MIGRATIONS)
    matcher = Matcher(
        db=db,
        encoder_factory=lambda: SentenceEncoder(
            batch_size=settings.encode_batch_size, threads=settings.torch_threads
        ),
        policy=policy_from(settings),
    )
    broker.include_router(build_router(group_id=settings.service_name, matcher=matcher))
    declare_publishers(broker, settings.service_name)
    return Service(
        settings=settings,
        broker=broker,
        db=db,
        metrics=metrics,
        api_routers=(build_api(db=db, matcher=matcher),),
        workers=(MatcherLoader(matcher), OutboxRelay(db=db, broker=broker, metrics=metrics)),
    )
