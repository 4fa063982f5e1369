"""The simulated storefront's own JSON API, the third dialect (the world's default)."""

from typing import Any

from scraper.domain.importers import RawRow
from scraper.domain.planning import Category, StoreInfo
from scraper.fetching import Fetcher


class StorefrontClient:
    """Read a storefront: chains, stores, categories, category pages and product barcodes."""

    def __init__(self, fetcher: Fetcher, base_url: str) -> None:
        self.fetcher = fetcher
        self.base = base_url.rstrip("/") + "/v1"

    async def chains(self) -> list[str]:
        """Return the chains the storefront sells for."""
        body = await self.fetcher.get_json(f"{self.base}/chains")
        return [chain["chain"] for chain in body["chains"]]

    async def stores(self, chain: str) -> list[StoreInfo]:
        """Return a chain's stores: id, name, state, postcode."""
        body = await self.fetcher.get_json(f"{self.base}/chains/{chain}/stores")
        return [
            StoreInfo(
                store_id=str(store["id"]),
                name=str(store["name"]),
                state=store.get("state"),
                postcode=store.get("postcode"),
            )
            for store in body["stores"]
        ]

    async def categories(self, chain: str) -> list[Category]:
        """Return a chain's categories with their page counts."""
        body = await self.fetcher.get_json(f"{self.base}/chains/{chain}/categories")
        return [Category(slug=c["slug"], pages=int(c["pages"])) for c in body["categories"]]

    async def page(
        self, chain: str, store_id: str, category: str, page: int, day: int | None
    ) -> list[RawRow]:
        """Return the listings of one page of a category at a store, on `day` (the shop's clock when None)."""
        params: dict[str, Any] = {"page": page}
        if day is not None:
            params["day"] = day
        body = await self.fetcher.get_json(
            f"{self.base}/chains/{chain}/stores/{store_id}/categories/{category}", params
        )
        listings: list[RawRow] = body["products"]
        return listings

    async def barcode(self, chain: str, sku: str) -> str | None:
        """Return a product's barcode, shown only on its details, or None when it has none."""
        detail = await self.fetcher.get_json(f"{self.base}/chains/{chain}/products/{sku}")
        barcode = detail.get("barcode")
        return str(barcode) if barcode else None
