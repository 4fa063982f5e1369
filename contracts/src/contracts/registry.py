"""The topic registry: the one source of truth for topics, keys, producers and consumers."""

from dataclasses import dataclass

from contracts.envelope import Event
from contracts.events import v1

DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic: what it carries, who writes and reads it, and how it is laid out."""

    name: str
    event: type[Event]
    key: str
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    partitions: int = 3
    retention_ms: int = 7 * DAY_MS
    # Dead letters wait for a fix and `pricestream dlq replay`: kept longer than the events.
    dlq_retention_ms: int = 30 * DAY_MS
    description: str = ""

    @property
    def dlq(self) -> str:
        """Name of the dead-letter topic for messages this topic's consumers reject."""
        return f"{self.name}.dlq"


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        name="prices.scraped.v1",
        event=v1.PricesScraped,
        key="chain:store_id",
        producers=("scraper",),
        consumers=("grouping", "bargains", "catalogue"),
        partitions=6,
        description="A store's page of price observations.",
    ),
    TopicSpec(
        name="products.observed.v1",
        event=v1.ProductObserved,
        key="chain:sku",
        producers=("scraper",),
        consumers=("substitutions", "bargains", "catalogue"),
        description="A product first seen, or whose description changed.",
    ),
    TopicSpec(
        name="groups.changed.v1",
        event=v1.StoreGroupChanged,
        key="chain:group_id",
        producers=("grouping",),
        consumers=("scraper", "bargains", "catalogue"),
        retention_ms=30 * DAY_MS,
        description="A store group's full membership after a change.",
    ),
    TopicSpec(
        name="rescrapes.requested.v1",
        event=v1.RescrapeRequested,
        key="chain:store_id",
        producers=("grouping",),
        consumers=("scraper",),
        description="A store to scrape before its routine turn (a stale anchor).",
    ),
    TopicSpec(
        name="prices.pruned.v1",
        event=v1.PricesPruned,
        key="chain:group_id",
        producers=("grouping",),
        consumers=(),
        description="Member prices not kept as equal to their anchor's (deleted, or answered on arrival).",
    ),
    TopicSpec(
        name="bargains.changed.v1",
        event=v1.BargainsChanged,
        key="chain:store_id",
        producers=("bargains",),
        consumers=("catalogue",),
        description="Bargains that appeared, changed or expired.",
    ),
    TopicSpec(
        name="substitutions.changed.v1",
        event=v1.SubstitutionsChanged,
        key="chain:sku",
        producers=("substitutions",),
        consumers=("bargains", "catalogue"),
        description="A product's current substitutes at levels L1 to L4.",
    ),
)

SERVICES: tuple[str, ...] = ("scraper", "grouping", "substitutions", "bargains", "catalogue")


def topic(name: str) -> TopicSpec:
    """Return the spec of a topic by name."""
    for spec in TOPICS:
        if spec.name == name:
            return spec
    raise KeyError(f"unknown topic {name!r}")


def topic_for(event: type[Event]) -> TopicSpec:
    """Return the topic that carries an event class."""
    for spec in TOPICS:
        if spec.event is event:
            return spec
    raise KeyError(f"no topic carries {event.__name__}")


def consumed_by(service: str) -> tuple[TopicSpec, ...]:
    """Return the topics a service consumes."""
    return tuple(spec for spec in TOPICS if service in spec.consumers)


def produced_by(service: str) -> tuple[TopicSpec, ...]:
    """Return the topics a service produces."""
    return tuple(spec for spec in TOPICS if service in spec.producers)
