"""Version 1 of every pricestream event."""

from datetime import UTC, datetime
from typing import ClassVar, Literal, Self

from pydantic import Field, model_validator

from contracts.envelope import Contract, Event
from contracts.types import (
    Barcode,
    Cents,
    ChainId,
    GroupId,
    Score,
    ShortText,
    Sku,
    StoreId,
    Text,
    UtcDatetime,
    UtcInstant,
    first_in_future,
)

MAX_OBSERVATIONS = 5_000
MAX_MEMBERS = 10_000


# --- prices ---------------------------------------------------------------------------


class StatedUnitPrice(Contract):
    """A unit price as the shop states it on the shelf label: $1.50 per 100g."""

    cents: Cents = Field(description="The stated price for `quantity` `unit`, in cents")
    quantity: int = Field(ge=1, le=10_000, description="100 in $1.50 per 100g")
    unit: Literal["g", "kg", "ml", "l", "ea"]
    text: ShortText = Field(description="The label as the shop wrote it")


class MultiBuy(Contract):
    """An offer of several items for one price: 2 for $5."""

    quantity: int = Field(ge=2, le=100)
    total_cents: Cents


class PriceObservation(Contract):
    """What one store charged for one product at one moment."""

    sku: Sku
    price_cents: Cents = Field(description="Shelf price paid today, in cents (per kg when sold_by is kg)")
    was_price_cents: Cents | None = Field(
        default=None, description="Regular price the shop shows during a special, in cents"
    )
    available: bool = Field(default=True, description="False when shown as out of stock")
    # Not checked against the clock here: the batch holding it checks all its prices at once.
    observed_at: UtcInstant
    unit_price: StatedUnitPrice | None = Field(default=None, description="The shop's own unit price")
    multibuy: MultiBuy | None = Field(
        default=None, description="A multi-buy offer; price_cents stays the price of one"
    )
    member_price_cents: Cents | None = Field(
        default=None, description="Price for loyalty members only; price_cents is what anyone pays"
    )
    sold_by: Literal["each", "kg"] = Field(
        default="each", description="kg: a loose item weighed at the till, priced per kilogram"
    )


class PageRef(Contract):
    """Which page of a store's catalogue a batch came from."""

    category: ShortText
    page: int = Field(ge=1, le=100_000)


class PricesScrapedPayload(Contract):
    """A batch of observations from one store: usually one catalogue page."""

    chain: ChainId
    store_id: StoreId
    source: Literal["scrape", "import", "ingest"] = Field(
        description="How the prices entered: own scraper, file import, or ingest endpoint"
    )
    run_id: str | None = Field(default=None, max_length=80, description="Scrape run, if any")
    page: PageRef | None = None
    observations: tuple[PriceObservation, ...] = Field(min_length=1, max_length=MAX_OBSERVATIONS)

    @model_validator(mode="after")
    def _observed_in_the_past(self) -> Self:
        """Reject a batch with a price observed in the future (past the clock skew allowed)."""
        # One clock read and one Python call per batch: a validator per price cost a third of decoding.
        late = first_in_future((o.observed_at for o in self.observations), now=datetime.now(UTC))
        if late is not None:
            raise ValueError(f"observations.{late}.observed_at: timestamp is in the future")
        return self


class PricesScraped(Event):
    """A store's prices were observed."""

    EVENT_TYPE: ClassVar[str] = "PricesScraped"
    SCHEMA_VERSION: ClassVar[int] = 1
    event_type: Literal["PricesScraped"]
    schema_version: Literal[1]
    payload: PricesScrapedPayload

    def partition_key(self) -> str:
        """Key by store so one store's batches stay in order."""
        return f"{self.payload.chain}:{self.payload.store_id}"


class PricesPrunedPayload(Contract):
    """Member prices not kept because they equal their anchor's: deleted, or answered as they came."""

    chain: ChainId
    group_id: GroupId
    anchor_store_id: StoreId
    store_ids: tuple[StoreId, ...] = Field(min_length=1, max_length=MAX_MEMBERS)
    rows_pruned: int = Field(
        ge=0, description="Prices deleted, and prices the anchor answered as they came (never stored)"
    )
    verified_at: UtcDatetime


class PricesPruned(Event):
    """Redundant member prices of a verified group were deleted."""

    EVENT_TYPE: ClassVar[str] = "PricesPruned"
    SCHEMA_VERSION: ClassVar[int] = 1
    event_type: Literal["PricesPruned"]
    schema_version: Literal[1]
    payload: PricesPrunedPayload

    def partition_key(self) -> str:
        """Key by group so a group's prunes stay in order."""
        return f"{self.payload.chain}:{self.payload.group_id}"


# --- products -------------------------------------------------------------------------


class ProductObservedPayload(Contract):
    """A product as a chain describes it."""

    chain: ChainId
    sku: Sku
    change: Literal["new", "changed"]
    name: Text
    brand: ShortText | None = None
    size: ShortText | None = Field(default=None, description="Size as the shop writes it: 2L")
    category: ShortText | None = None
    barcode: Barcode | None = None
    url: str | None = Field(default=None, max_length=2_000)
    observed_at: UtcDatetime
    shared_category: ShortText | None = Field(
        default=None,
        description="The chain's category on pricestream's shared tree (dairy/cheese); None when unmapped",
    )


class ProductObserved(Event):
    """A product was seen for the first time, or its description changed."""

    EVENT_TYPE: ClassVar[str] = "ProductObserved"
    SCHEMA_VERSION: ClassVar[int] = 1
    event_type: Literal["ProductObserved"]
    schema_version: Literal[1]
    payload: ProductObservedPayload

    def partition_key(self) -> str:
        """Key by product so one product's changes stay in order."""
        return f"{self.payload.chain}:{self.payload.sku}"


# --- store groups ---------------------------------------------------------------------

GroupChangeReason = Literal[
    "formed", "merged", "member_joined", "member_left", "split", "anchor_changed", "dissolved"
]


class StoreGroupChangedPayload(Contract):
    """The full, current membership of one store group."""

    chain: ChainId
    group_id: GroupId
    group_version: int = Field(ge=1, description="Grows with every change of this group")
    anchor_store_id: StoreId
    member_store_ids: tuple[StoreId, ...] = Field(
        max_length=MAX_MEMBERS, description="Members other than the anchor"
    )
    reason: GroupChangeReason
    merged_into: GroupId | None = Field(default=None, description="Set when reason is dissolved")


class StoreGroupChanged(Event):
    """A store group was formed, changed or dissolved."""

    EVENT_TYPE: ClassVar[str] = "StoreGroupChanged"
    SCHEMA_VERSION: ClassVar[int] = 1
    event_type: Literal["StoreGroupChanged"]
    schema_version: Literal[1]
    payload: StoreGroupChangedPayload

    def partition_key(self) -> str:
        """Key by group so a group's versions arrive in order."""
        return f"{self.payload.chain}:{self.payload.group_id}"


class RescrapeRequestedPayload(Contract):
    """A store whose prices must be fetched again, and why."""

    chain: ChainId
    store_id: StoreId
    reason: Literal["stale_anchor", "health_check", "manual"]
    group_id: GroupId | None = None
    last_observed_at: UtcDatetime | None = Field(
        default=None, description="Freshest price held for the store when asked"
    )


class RescrapeRequested(Event):
    """A store should be scraped before its routine turn."""

    EVENT_TYPE: ClassVar[str] = "RescrapeRequested"
    SCHEMA_VERSION: ClassVar[int] = 1
    event_type: Literal["RescrapeRequested"]
    schema_version: Literal[1]
    payload: RescrapeRequestedPayload

    def partition_key(self) -> str:
        """Key by store, like the prices it asks for."""
        return f"{self.payload.chain}:{self.payload.store_id}"


# --- bargains -------------------------------------------------------------------------

BargainKind = Literal["discount", "cross_chain", "historical_low"]


class Bargain(Contract):
    """A price that is really cheap, with the evidence."""

    bargain_id: str = Field(min_length=1, max_length=200)
    kind: BargainKind
    chain: ChainId
    store_id: StoreId = Field(description="The anchor store whose price this is")
    sku: Sku
    price_cents: Cents
    reference_cents: Cents = Field(description="What the price is compared with")
    score: Score
    reason: Text
    observed_at: UtcDatetime


class BargainChange(Contract):
    """One bargain that appeared, changed or expired."""

    change: Literal["appeared", "changed", "expired"]
    bargain: Bargain


class BargainsChangedPayload(Contract):
    """The bargains changed by one recomputation at one store."""

    chain: ChainId
    store_id: StoreId
    changes: tuple[BargainChange, ...] = Field(min_length=1, max_length=MAX_OBSERVATIONS)


class BargainsChanged(Event):
    """Bargains appeared, changed or expired."""

    EVENT_TYPE: ClassVar[str] = "BargainsChanged"
    SCHEMA_VERSION: ClassVar[int] = 1
    event_type: Literal["BargainsChanged"]
    schema_version: Literal[1]
    payload: BargainsChangedPayload

    def partition_key(self) -> str:
        """Key by store, like the prices they come from."""
        return f"{self.payload.chain}:{self.payload.store_id}"


# --- substitutions --------------------------------------------------------------------

SubstitutionLevel = Literal["L1", "L2", "L3", "L4"]


class Substitute(Contract):
    """A product a shopper could buy instead."""

    level: SubstitutionLevel
    chain: ChainId
    sku: Sku
    score: Score
    reason: Text


class SubstitutionsChangedPayload(Contract):
    """The complete, current substitutes of one product."""

    chain: ChainId
    sku: Sku
    substitutes: tuple[Substitute, ...] = Field(max_length=200)


class SubstitutionsChanged(Event):
    """A product's substitutes were computed or changed."""

    EVENT_TYPE: ClassVar[str] = "SubstitutionsChanged"
    SCHEMA_VERSION: ClassVar[int] = 1
    event_type: Literal["SubstitutionsChanged"]
    schema_version: Literal[1]
    payload: SubstitutionsChangedPayload

    def partition_key(self) -> str:
        """Key by product so one product's substitutes stay in order."""
        return f"{self.payload.chain}:{self.payload.sku}"


ALL: tuple[type[Event], ...] = (
    PricesScraped,
    PricesPruned,
    ProductObserved,
    StoreGroupChanged,
    RescrapeRequested,
    BargainsChanged,
    SubstitutionsChanged,
)
