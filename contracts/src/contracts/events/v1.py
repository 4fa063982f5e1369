"""Version 1 of every pricestream event."""

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from itertools import repeat
from typing import ClassVar, Literal, NamedTuple, Self

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

SoldBy = Literal["each", "kg"]


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
    sold_by: SoldBy = Field(
        default="each", description="kg: a loose item weighed at the till, priced per kilogram"
    )


class Sighting(NamedTuple):
    """One price of a page as a plain tuple, with PriceObservation's fields: cheap to build and read."""

    sku: str
    price_cents: int
    was_price_cents: int | None
    available: bool
    observed_at: datetime
    unit_price: StatedUnitPrice | None
    multibuy: MultiBuy | None
    member_price_cents: int | None
    sold_by: SoldBy


class PriceColumns(Contract):
    """A page's prices as columns: entry i of each column is price i; what all share is said once.

    Decoding a column of numbers costs a tenth of decoding an object per price. A column left
    out holds its default for every price (no was price, available, sold each, ...).
    """

    sku: tuple[Sku, ...] = Field(min_length=1, max_length=MAX_OBSERVATIONS)
    price_cents: tuple[Cents, ...] = Field(
        description="Shelf prices paid today, in cents (per kg when sold by kg)"
    )
    observed_at: UtcDatetime = Field(
        description="When the page was seen: every price's moment, or the newest of `observed_at_each`"
    )
    observed_at_each: tuple[UtcInstant, ...] | None = Field(
        default=None, description="Each price's own moment, when they were not seen at once (a file's rows)"
    )
    was_price_cents: tuple[Cents | None, ...] | None = Field(default=None, description="Left out: none shown")
    available: tuple[bool, ...] | None = Field(default=None, description="Left out: every price available")
    unit_price: tuple[StatedUnitPrice | None, ...] | None = Field(default=None, description="Left out: none")
    multibuy: tuple[MultiBuy | None, ...] | None = Field(default=None, description="Left out: none")
    member_price_cents: tuple[Cents | None, ...] | None = Field(default=None, description="Left out: none")
    sold_by: tuple[SoldBy, ...] | None = Field(default=None, description="Left out: every price sold each")

    @model_validator(mode="after")
    def _aligned(self) -> Self:
        """Reject columns of another length than `sku`, and moments newer than `observed_at`."""
        length = len(self.sku)
        for name in _COLUMNS:
            column = getattr(self, name)
            if column is not None and len(column) != length:
                raise ValueError(f"{name}: {len(column)} values for {length} prices")
        if self.observed_at_each is not None and max(self.observed_at_each) != self.observed_at:
            raise ValueError("observed_at: must be the newest of observed_at_each")
        return self

    @classmethod
    def of(cls, observations: Sequence[PriceObservation]) -> "PriceColumns":
        """Turn prices given one by one into columns, leaving out those that hold only defaults."""
        times = tuple(o.observed_at for o in observations)
        newest = max(times)
        columns: dict[str, object] = {
            "sku": tuple(o.sku for o in observations),
            "price_cents": tuple(o.price_cents for o in observations),
            "observed_at": newest,
        }
        if any(t != newest for t in times):
            columns["observed_at_each"] = times
        for name, default in _DEFAULTS.items():
            column = tuple(getattr(o, name) for o in observations)
            if any(value != default for value in column):
                columns[name] = column
        return cls.model_validate(columns)

    def sightings(self) -> list[Sighting]:
        """Return the prices as tuples; their moments in `datetime.UTC`, which compares without a call."""
        length = len(self.sku)
        times = (
            repeat(self.observed_at.astimezone(UTC), length)
            if self.observed_at_each is None
            else (t.astimezone(UTC) for t in self.observed_at_each)
        )

        def column(name: str) -> Iterable[object]:
            given: tuple[object, ...] | None = getattr(self, name)
            return repeat(_DEFAULTS[name], length) if given is None else given

        return list(
            map(
                Sighting._make,
                zip(
                    self.sku,
                    self.price_cents,
                    column("was_price_cents"),
                    column("available"),
                    times,
                    column("unit_price"),
                    column("multibuy"),
                    column("member_price_cents"),
                    column("sold_by"),
                    strict=True,
                ),
            )
        )


# A column left out holds the default PriceObservation declares for its field.
_DEFAULTS: dict[str, object] = {
    name: PriceObservation.model_fields[name].default
    for name in ("was_price_cents", "available", "unit_price", "multibuy", "member_price_cents", "sold_by")
}
_COLUMNS = ("price_cents", "observed_at_each", *_DEFAULTS)


class PageRef(Contract):
    """Which page of a store's catalogue a batch came from."""

    category: ShortText
    page: int = Field(ge=1, le=100_000)


class PricesScrapedPayload(Contract):
    """A batch of observations from one store: usually one catalogue page.

    The prices come either one by one (`observations`) or as columns (`prices`, cheaper to
    decode); consumers read either through `sightings()`.
    """

    chain: ChainId
    store_id: StoreId
    source: Literal["scrape", "import", "ingest"] = Field(
        description="How the prices entered: own scraper, file import, or ingest endpoint"
    )
    run_id: str | None = Field(default=None, max_length=80, description="Scrape run, if any")
    page: PageRef | None = None
    observations: tuple[PriceObservation, ...] = Field(
        default=(),
        max_length=MAX_OBSERVATIONS,
        description="The prices one by one; empty when `prices` holds them",
    )
    prices: PriceColumns | None = Field(
        default=None, description="The prices as columns, instead of `observations`"
    )

    @model_validator(mode="after")
    def _one_way_and_in_the_past(self) -> Self:
        """Require the prices one way, and reject a price observed in the future (past the skew allowed)."""
        if (self.prices is None) == (not self.observations):
            raise ValueError(
                "give the prices either as observations or as columns (prices), not both or neither"
            )
        # One clock read and one Python call per batch: a validator per price cost a third of decoding.
        late = first_in_future((o.observed_at for o in self.observations), now=datetime.now(UTC))
        if late is not None:
            raise ValueError(f"observations.{late}.observed_at: timestamp is in the future")
        return self

    def count(self) -> int:
        """Return how many prices the batch holds."""
        return len(self.prices.sku) if self.prices is not None else len(self.observations)

    def newest(self) -> datetime:
        """Return the newest moment a price of the batch was seen."""
        if self.prices is not None:
            return self.prices.observed_at
        return max(o.observed_at for o in self.observations)

    def sightings(self) -> list[Sighting]:
        """Return the batch's prices as tuples, whichever way they came; moments in `datetime.UTC`."""
        if self.prices is not None:
            return self.prices.sightings()
        return [
            Sighting(
                o.sku,
                o.price_cents,
                o.was_price_cents,
                o.available,
                o.observed_at.astimezone(UTC),
                o.unit_price,
                o.multibuy,
                o.member_price_cents,
                o.sold_by,
            )
            for o in self.observations
        ]


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
