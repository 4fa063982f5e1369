"""Every event version pricestream knows; the names without a suffix are current."""

from contracts.events.v1 import (
    ALL as V1,
)
from contracts.events.v1 import (
    Bargain,
    BargainChange,
    BargainsChanged,
    MultiBuy,
    PageRef,
    PriceColumns,
    PriceObservation,
    PricesPruned,
    PricesScraped,
    ProductObserved,
    RescrapeRequested,
    Sighting,
    StatedUnitPrice,
    StoreGroupChanged,
    Substitute,
    SubstitutionsChanged,
)

__all__ = [
    "V1",
    "Bargain",
    "BargainChange",
    "BargainsChanged",
    "MultiBuy",
    "PageRef",
    "PriceColumns",
    "PriceObservation",
    "PricesPruned",
    "PricesScraped",
    "ProductObserved",
    "RescrapeRequested",
    "Sighting",
    "StatedUnitPrice",
    "StoreGroupChanged",
    "Substitute",
    "SubstitutionsChanged",
]
