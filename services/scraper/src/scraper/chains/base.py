"""The chain adapter interface, and the router that sends each chain to its adapter.

Every defence a site trips (a challenge page, a changed build id, 403 or a 429 storm, a
silently empty page, a renamed field) ends the same way, here: a SiteDefenceError naming it,
the host paused, a metric labelled with the chain and the defence, and a log line. The
page is not staged, so nothing partial is published; a later resume fetches it again.
"""

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, Protocol, TypeVar

import httpx
import structlog
from prometheus_client import Counter

from scraper.domain.chains import ShopAnswerError
from scraper.domain.importers import RawRow
from scraper.domain.planning import Category, StoreInfo
from scraper.fetching import Fetcher, SiteDefenceError

log = structlog.get_logger(__name__)

Dialect = Literal["simulator", "coles", "woolworths"]
"""Which web API a chain's site speaks."""

T = TypeVar("T")


class ChainAdapter(Protocol):
    """A chain's site, in the scraper's terms: store directory, category tree, priced pages, barcodes."""

    async def stores(self, chain: str) -> list[StoreInfo]:
        """Return the chain's stores."""
        ...

    async def categories(self, chain: str) -> list[Category]:
        """Return the chain's categories with their page counts."""
        ...

    async def page(
        self, chain: str, store_id: str, category: str, page: int, day: int | None
    ) -> list[RawRow]:
        """Return one page of a category priced for one store (rows with `_error` are quarantined)."""
        ...

    async def barcode(self, chain: str, sku: str) -> str | None:
        """Return a product's barcode from its details, or None when it has none."""
        ...


class Shop(ChainAdapter, Protocol):
    """An adapter that can also list the chains it serves: the simulated storefront, the router."""

    async def chains(self) -> list[str]:
        """Return the chains the storefront sells for."""
        ...


async def get_parsed(
    fetcher: Fetcher, url: str, params: dict[str, Any] | None, parse: Callable[[Any], T]
) -> T:
    """GET a JSON answer and parse it; an answer the parser distrusts becomes a SiteDefenceError."""
    body = await fetcher.get_json(url, params)
    return parsed(url, lambda: parse(body))


def parsed(url: str, parse: Callable[[], T]) -> T:
    """Run a parser over an answer from `url`, turning a distrusted answer into a SiteDefenceError."""
    try:
        return parse()
    except ShopAnswerError as error:
        raise SiteDefenceError(error.kind, url, error.detail) from None


class ChainRouter:
    """The scraper's Shop: each chain goes to its dialect's adapter, the rest to the storefront."""

    def __init__(
        self,
        *,
        storefront: Shop,
        adapters: Mapping[str, ChainAdapter],
        fetcher: Fetcher,
        defences: Counter,
    ) -> None:
        self.storefront = storefront
        self.adapters = dict(adapters)
        self.fetcher = fetcher
        self.defences = defences

    def adapter(self, chain: str) -> ChainAdapter:
        """Return the adapter of a chain: its configured dialect, or the simulated storefront."""
        return self.adapters.get(chain, self.storefront)

    async def chains(self) -> list[str]:
        """Return the chains with a configured dialect, then those the storefront sells for."""
        configured = list(self.adapters)
        try:
            listed = await self.storefront.chains()
        except (httpx.HTTPError, OSError, ValueError, KeyError) as error:
            if not configured:
                raise
            # Real chains do not depend on the simulated storefront being up.
            log.info("storefront not listing chains", error=f"{type(error).__name__}: {error}")
            listed = []
        return configured + [chain for chain in listed if chain not in self.adapters]

    async def stores(self, chain: str) -> list[StoreInfo]:
        """Return a chain's stores."""
        return await self._guarded(chain, self.adapter(chain).stores(chain))

    async def categories(self, chain: str) -> list[Category]:
        """Return a chain's categories with their page counts."""
        return await self._guarded(chain, self.adapter(chain).categories(chain))

    async def page(
        self, chain: str, store_id: str, category: str, page: int, day: int | None
    ) -> list[RawRow]:
        """Return one page of a category priced for one store."""
        return await self._guarded(chain, self.adapter(chain).page(chain, store_id, category, page, day))

    async def barcode(self, chain: str, sku: str) -> str | None:
        """Return a product's barcode, or None when it has none."""
        return await self._guarded(chain, self.adapter(chain).barcode(chain, sku))

    async def _guarded(self, chain: str, call: Awaitable[T]) -> T:
        """Await an adapter call; a tripped defence pauses the host and is counted and logged."""
        try:
            return await call
        except SiteDefenceError as defence:
            self.fetcher.pause(defence.url)
            self.defences.labels(chain, defence.kind).inc()
            log.warning(
                "site defence tripped, host paused",
                chain=chain,
                defence=defence.kind,
                host=httpx.URL(defence.url).host,
                pause_s=self.fetcher.policy.pause_s,
                error=defence.detail,
            )
            raise
