"""The bargains service's history that `pricestream archive` moves out: runs of a price at a store."""

from bargains.domain.bargains import DEFAULT_POLICY
from servicekit.archive import ArchivedTable

HISTORY = ArchivedTable(
    service="bargains",
    name="history",
    columns=(
        ("chain", "text"),
        ("store_id", "text"),
        ("sku", "text"),
        ("price_cents", "integer"),
        ("was_price_cents", "integer"),
        ("starts_at", "timestamptz"),
        ("ends_at", "timestamptz"),
        ("member_price_cents", "integer"),
        ("multibuy_quantity", "integer"),
        ("multibuy_total_cents", "integer"),
        ("sold_by", "text"),
    ),
    key=("chain", "store_id", "sku", "starts_at"),
    # A run is archived once its last sighting is older than the window: the current run stays.
    time_column="ends_at",
    # A run a sweep holds was last seen when the sweep was (servicekit.sweeps): a product's newest.
    stays="sweep IS NOT NULL",
    # The historical low looks this far back from the current run's start.
    keeps_at_least=DEFAULT_POLICY.lookback,
    # The history API says from it that older history lies in the archive.
    months_table="archived_months",
)
TABLES = (HISTORY,)
