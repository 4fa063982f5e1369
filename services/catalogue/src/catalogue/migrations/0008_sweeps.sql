-- A store's page seen whole again with nothing changed moves one row here, not the last sighting of
-- each of its current prices (servicekit.sweeps): a price held by a sweep (`prices.sweep`, the
-- page) was last seen at the sweep's `seen_at` when that is later than its own `observed_at`.
-- A price is held only by the page that last wrote it, at that page's moment; written any other
-- way it is held no more (its sweep NULL).
CREATE TABLE sweeps (
    chain text NOT NULL,
    store_id text NOT NULL,
    page bigint NOT NULL,
    seen_at timestamptz NOT NULL,
    -- What the page showed (servicekit.sweeps.shelves_of) when a batch last wrote every one of its
    -- prices at its moment, held by this sweep; NULL once one of them is let go or was not written
    -- (an older sighting kept). The page seen again showing the same then moves only `seen_at`.
    shelves bigint,
    PRIMARY KEY (chain, store_id, page)
);
ALTER TABLE prices ADD COLUMN sweep bigint;

-- The current prices as read: each one's last sighting is its own or its sweep's, the later.
CREATE VIEW current_prices AS
SELECT p.chain, p.store_id, p.sku, p.price_cents, p.was_price_cents, p.available, p.member_price_cents,
       p.multibuy_quantity, p.multibuy_total_cents, p.sold_by, p.stated_cents, p.stated_quantity,
       p.stated_unit, p.stated_text, GREATEST(p.observed_at, s.seen_at) AS observed_at, p.run_starts_at
FROM prices p
LEFT JOIN sweeps s ON s.chain = p.chain AND s.store_id = p.store_id AND s.page = p.sweep;
