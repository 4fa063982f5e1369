"""Scrape one store of a real chain from the operator's machine, without the stack.

Live mode reads a chain's own site through its adapter, validates every row as the
service does, and hands back the observations (for a file that `pricestream publish`
sends through the scraper) and the reasons rows were quarantined. Without network it
fails at once: the first request has a short connect timeout and no retries.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from scraper.chains import coles, woolworths
from scraper.chains.base import ChainAdapter
from scraper.domain.ingest import Accepted, validate_row
from scraper.fetching import Fetcher, FetchPolicy, cookieless_client

SITES: dict[str, str] = {"coles": coles.SITE, "woolworths": woolworths.SITE}
"""The real site of each dialect."""


class NoNetworkError(RuntimeError):
    """The chain's site cannot be reached from this machine."""


@dataclass
class LiveSummary:
    """What a live scrape of one store found: pages read, observations, quarantine reasons."""

    pages: int = 0
    observations: list[dict[str, Any]] = field(default_factory=list)
    quarantined: Counter[str] = field(default_factory=Counter)


def live_adapter(dialect: str, fetcher: Fetcher, site: str | None = None) -> ChainAdapter:
    """Return the adapter of a real chain's dialect, reading `site` (default: the real one)."""
    if dialect == "coles":
        return coles.ColesAdapter(fetcher, site or coles.SITE)
    if dialect == "woolworths":
        return woolworths.WoolworthsAdapter(fetcher, site or woolworths.SITE)
    raise ValueError(f"live mode speaks coles or woolworths, not {dialect!r}")


def live_fetcher(user_agent: str, *, connect_timeout_s: float = 5.0) -> Fetcher:
    """Return a polite fetcher for one operator's scrape: a few requests a second, short timeouts."""
    policy = FetchPolicy(
        concurrency=2, rate_per_s=2.0, timeout_s=20.0, connect_timeout_s=connect_timeout_s, max_attempts=3
    )
    return Fetcher(cookieless_client(user_agent), policy)


async def check_reachable(fetcher: Fetcher, site: str) -> None:
    """Fail at once, with a clear message, when the site's host cannot be reached."""
    try:
        await fetcher.client.get(site, timeout=fetcher.policy.connect_timeout_s or fetcher.policy.timeout_s)
    except httpx.TransportError as error:
        raise NoNetworkError(
            f"cannot reach {site} ({type(error).__name__}: {error or 'no answer'}): "
            "live mode needs network access to the chain's site"
        ) from None


async def scrape_store(
    adapter: ChainAdapter, chain: str, store_id: str, *, max_pages: int, now: datetime
) -> LiveSummary:
    """Read up to `max_pages` category pages of one store and validate their rows."""
    summary = LiveSummary()
    await adapter.stores(chain)
    for category in await adapter.categories(chain):
        for page in range(1, category.pages + 1):
            if summary.pages >= max_pages:
                return summary
            rows = await adapter.page(chain, store_id, category.slug, page, None)
            summary.pages += 1
            for row in rows:
                verdict = validate_row(
                    {**row, "category": category.slug}, default_chain=chain, default_store=store_id, now=now
                )
                if isinstance(verdict, Accepted):
                    summary.observations.append(_observation_row(verdict))
                else:
                    summary.quarantined[verdict.reason] += 1
    return summary


def _observation_row(accepted: Accepted) -> dict[str, Any]:
    """Write an accepted row as a line the file importers read back (`pricestream publish`)."""
    seen = accepted.observation
    product = accepted.product
    row: dict[str, Any] = {
        "chain": accepted.chain,
        "store_id": accepted.store_id,
        "sku": seen.sku,
        "price_cents": seen.price_cents,
        "was_price_cents": seen.was_price_cents,
        "member_price_cents": seen.member_price_cents,
        "available": seen.available,
        "sold_by": seen.sold_by,
        "unit_price": seen.unit_price.text if seen.unit_price else None,
        "multibuy": f"{seen.multibuy.quantity} for ${seen.multibuy.total_cents / 100:.2f}"
        if seen.multibuy
        else None,
        "observed_at": seen.observed_at.isoformat(),
    }
    if product is not None:
        row |= {
            "name": product.name,
            "brand": product.brand,
            "size": product.size,
            "category": product.category,
            "barcode": product.barcode,
            "url": product.url,
        }
    return {key: value for key, value in row.items() if value is not None}
