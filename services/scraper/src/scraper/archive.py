"""The scraper's history that `pricestream archive` moves out: the log of observations ingested."""

from servicekit.archive import ArchivedTable

# Only a re-sent observation is checked against it: an archived one, sent again, is taken again,
# which downstream consumers absorb (an older or equal sighting changes nothing).
INGESTED_PRICES = ArchivedTable(
    service="scraper",
    name="ingested_prices",
    columns=(
        ("chain", "text"),
        ("store_id", "text"),
        ("sku", "text"),
        ("observed_at", "timestamptz"),
        ("price_cents", "integer"),
    ),
    key=("chain", "store_id", "sku", "observed_at"),
    time_column="observed_at",
)
TABLES = (INGESTED_PRICES,)
