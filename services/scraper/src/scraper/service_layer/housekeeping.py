"""Forget what only grows: scrape runs long ended (their pages with them) and old quarantined rows."""

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from scraper.repository import ScraperRepository
from servicekit.unit_of_work import UnitOfWorkFactory

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Keep:
    """How long ended runs and quarantined rows are kept."""

    runs: timedelta
    quarantine: timedelta


async def forget_old(
    uow: UnitOfWorkFactory[ScraperRepository], *, now: datetime, keep: Keep
) -> tuple[int, int]:
    """Delete runs that ended longer ago than kept, and quarantined rows older; return how many of each."""
    async with uow() as work:
        runs, rows = await work.repo.forget_old(
            runs_before=now - keep.runs, quarantine_before=now - keep.quarantine
        )
    if runs or rows:
        log.info("forgot old runs and quarantined rows", runs=runs, quarantined=rows)
    return runs, rows
