-- A store's page seen again unchanged moves one row, not the last sighting of each of its prices
-- (servicekit.sweeps): a latest price held by a sweep (`latest_prices.sweep`, its page) was last
-- seen at the sweep's `seen_at` when that is later than its own `observed_at`. `shelves` is what
-- the page showed (servicekit.sweeps.shelves_of) when its rows were written at its moment.
CREATE TABLE sweeps (
    chain text NOT NULL,
    store_id text NOT NULL,
    page bigint NOT NULL,
    seen_at timestamptz NOT NULL,
    shelves bigint NOT NULL,
    PRIMARY KEY (chain, store_id, page)
);
ALTER TABLE latest_prices ADD COLUMN sweep bigint;
ALTER TABLE incoming_prices ADD COLUMN sweep bigint;

-- The latest prices as every reader sees them: a held row's last sighting is its sweep's if later.
CREATE VIEW seen_prices AS
SELECT p.chain, p.store_id, p.sku, p.price_cents, p.was_price_cents, p.available,
       greatest(p.observed_at, s.seen_at) AS observed_at, p.sweep
FROM latest_prices p
LEFT JOIN sweeps s ON s.chain = p.chain AND s.store_id = p.store_id AND s.page = p.sweep;
