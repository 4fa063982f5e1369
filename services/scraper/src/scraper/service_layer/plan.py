"""Keep the scrape plan current from what grouping says: group changes and re-scrape requests."""

from contracts.events.v1 import RescrapeRequestedPayload, StoreGroupChangedPayload
from scraper.domain.planning import StoreRef
from scraper.repository import ScraperRepository
from servicekit.unit_of_work import Work


async def apply_group_change(work: Work[ScraperRepository], group: StoreGroupChangedPayload) -> bool:
    """Make the group's anchor a routine scrape and its members samples; False for a stale version."""
    return await work.repo.apply_group(group=group)


async def queue_rescrape(work: Work[ScraperRepository], request: RescrapeRequestedPayload) -> None:
    """Queue a store for the next run, ahead of the routine plan."""
    await work.repo.request_rescrape(
        store=StoreRef(chain=request.chain, store_id=request.store_id), reason=request.reason
    )
