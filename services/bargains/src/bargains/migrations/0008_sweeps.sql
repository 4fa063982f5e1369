-- A store's page seen whole again with nothing changed moves one row here, not the end of each of
-- its runs (servicekit.sweeps): a run held by a sweep (`history.sweep`, the page) was last seen at
-- the sweep's `seen_at` when that is later than its own `ends_at`. Only a product's newest run is
-- ever held; one that stops being the newest gets its end written first.
CREATE TABLE sweeps (
    chain text NOT NULL,
    store_id text NOT NULL,
    page bigint NOT NULL,
    seen_at timestamptz NOT NULL,
    PRIMARY KEY (chain, store_id, page)
);
ALTER TABLE history ADD COLUMN sweep bigint;

-- The history as read: each run's end is when it was last seen.
CREATE VIEW runs AS
SELECT h.chain, h.store_id, h.sku, h.price_cents, h.was_price_cents, h.starts_at,
       GREATEST(h.ends_at, s.seen_at) AS ends_at,
       h.member_price_cents, h.multibuy_quantity, h.multibuy_total_cents, h.sold_by
FROM history h
LEFT JOIN sweeps s ON s.chain = h.chain AND s.store_id = h.store_id AND s.page = h.sweep;
