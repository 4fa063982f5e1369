"""The catalogue's history that `pricestream archive` moves out, and the months it records as archived."""

from servicekit.archive import ArchivedTable

HISTORY = ArchivedTable(
    service="catalogue",
    name="history",
    columns=(
        ("chain", "text"),
        ("store_id", "text"),
        ("sku", "text"),
        ("starts_at", "timestamptz"),
        ("ends_at", "timestamptz"),
        ("price_cents", "integer"),
        ("was_price_cents", "integer"),
    ),
    key=("chain", "store_id", "sku", "starts_at"),
    # A run is archived once its last sighting is older than the window: the current run stays.
    time_column="ends_at",
    # The product API and page say from it that older history lies in the archive.
    months_table="archived_months",
)
TABLES = (HISTORY,)
