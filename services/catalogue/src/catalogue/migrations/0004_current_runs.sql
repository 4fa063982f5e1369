-- A price's current run lives in its row of prices (from run_starts_at to observed_at, at its
-- price): a sighting of the same price moves only that row, not a run of history as well.
-- history keeps the runs that ended, each written once, when its price changed.
ALTER TABLE prices
    ADD COLUMN run_starts_at timestamptz,
    -- The run that the row's last update ended, if it ended one (NULL otherwise): the merge reads
    -- it back from its upsert and writes it to history in the same statement.
    ADD COLUMN ended_starts_at timestamptz,
    ADD COLUMN ended_at timestamptz,
    ADD COLUMN ended_cents integer,
    ADD COLUMN ended_was_cents integer;

-- Each price's newest run becomes its current run where it agrees with the current price.
UPDATE prices p SET run_starts_at = h.starts_at
FROM (SELECT DISTINCT ON (chain, store_id, sku) chain, store_id, sku, starts_at, ends_at, price_cents,
             was_price_cents
      FROM history ORDER BY chain, store_id, sku, starts_at DESC) AS h
WHERE h.chain = p.chain AND h.store_id = p.store_id AND h.sku = p.sku
  AND h.ends_at = p.observed_at AND h.price_cents = p.price_cents
  AND h.was_price_cents IS NOT DISTINCT FROM p.was_price_cents;

-- One that disagrees (none is expected: both were written from the same sightings) starts a run
-- at its sighting.
UPDATE prices SET run_starts_at = observed_at WHERE run_starts_at IS NULL;
ALTER TABLE prices ALTER COLUMN run_starts_at SET NOT NULL;

-- The current runs leave history, with any run overlapping them.
DELETE FROM history h USING prices p
WHERE h.chain = p.chain AND h.store_id = p.store_id AND h.sku = p.sku AND h.starts_at >= p.run_starts_at;
