"""Assemble the substitutions service from its settings: model, catalogue, handlers, API."""

from importlib.resources import files
from pathlib import Path

from servicekit.clock import Clock, utc_now
from servicekit.consuming import ConsumerGroup
from servicekit.kit import declare_publishers, make_parts
from servicekit.outbox import OutboxRelay
from servicekit.service import Service
from servicekit.unit_of_work import unit_of_work_factory
from substitutions.api import build_api
from substitutions.embeddings import SentenceEncoder
from substitutions.handlers import build_router
from substitutions.repository import PostgresSubstitutionsRepository
from substitutions.service_layer import Matcher
from substitutions.settings import SubstitutionsSettings, policy_from
from substitutions.workers import MatcherLoader

MIGRATIONS = Path(str(files("substitutions") / "migrations"))


def bootstrap(settings: SubstitutionsSettings, *, clock: Clock = utc_now) -> Service:
    """Wire the substitutions service; nothing connects or loads until the service starts."""
    broker, db, metrics = make_parts(settings, migrations=MIGRATIONS)
    matcher = Matcher(
        uow=unit_of_work_factory(db, PostgresSubstitutionsRepository),
        encoder_factory=lambda: SentenceEncoder(
            batch_size=settings.encode_batch_size, threads=settings.torch_threads
        ),
        policy=policy_from(settings),
        relearn_from=settings.relearn_from,
        clock=clock,
    )
    # Observations commit through the matcher's units of work, so its catalogue follows the commits.
    router = build_router(
        consumers=ConsumerGroup.of(settings),
        uow=matcher.unit_of_work,
        matcher=matcher,
        clock=clock,
    )
    broker.include_router(router)
    declare_publishers(broker, settings.service_name)
    return Service(
        settings=settings,
        broker=broker,
        db=db,
        metrics=metrics,
        api_routers=(build_api(db=db, matcher=matcher, clock=clock),),
        workers=(
            MatcherLoader(matcher, quiet_s=settings.relearn_quiet_s),
            OutboxRelay(db=db, broker=broker, metrics=metrics),
        ),
    )
