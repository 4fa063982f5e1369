"""The scraper's client of a storefront's JSON API (the simulated world's, or a real shop's)."""

from typing import Any

from scraper.fetching import Fetcher


class StorefrontClient:
    """Read a storefront: chains, stores, categories, category pages and product details."""

    def __init__(self, fetcher: Fetcher, base_url: str) -> None:
        self.fetcher = fetcher
        self.base = base_url.rstrip("/") + "/v1"

    async def chains(self) -> list[str]:
        """Return the chains the storefront sells for."""
        body = await self.fetcher.get_json(f"{self.base}/chains")
        return [chain["chain"] for chain in body["chains"]]

    async def stores(self, chain: str) -> list[dict[str, Any]]:
        """Return a chain's stores: id, name, state, postcode."""
        body = await self.fetcher.get_json(f"{self.base}/chains/{chain}/stores")
        stores: list[dict[str, Any]] = body["stores"]
        return stores

    async def categories(self, chain: str) -> list[dict[str, Any]]:
        """Return a chain's categories with their page counts."""
        body = await self.fetcher.get_json(f"{self.base}/chains/{chain}/categories")
        categories: list[dict[str, Any]] = body["categories"]
        return categories

    async def page(
        self, chain: str, store_id: str, category: str, page: int, day: int | None
    ) -> dict[str, Any]:
        """Return one page of a category at a store, on `day` (the shop's clock when None)."""
        params: dict[str, Any] = {"page": page}
        if day is not None:
            params["day"] = day
        body: dict[str, Any] = await self.fetcher.get_json(
            f"{self.base}/chains/{chain}/stores/{store_id}/categories/{category}", params
        )
        return body

    async def product(self, chain: str, sku: str) -> dict[str, Any]:
        """Return a product's details, the only place its barcode is shown."""
        body: dict[str, Any] = await self.fetcher.get_json(f"{self.base}/chains/{chain}/products/{sku}")
        return body
