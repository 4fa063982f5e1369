-- How many stores of a chain charge each price for a product now, by the UTC day their price
-- was last seen: a chain-wide median from a few rows instead of every store's history. A count
-- that falls to zero stays until the expiry task deletes it (one statement less per batch).
CREATE TABLE price_counts (
    chain text NOT NULL,
    sku text NOT NULL,
    seen_on date NOT NULL,
    price_cents integer NOT NULL,
    stores integer NOT NULL,
    PRIMARY KEY (chain, sku, seen_on, price_cents)
);

INSERT INTO price_counts (chain, sku, seen_on, price_cents, stores)
SELECT chain, sku, (ends_at AT TIME ZONE 'UTC')::date, price_cents, count(*)
FROM (SELECT DISTINCT ON (chain, store_id, sku) chain, sku, price_cents, ends_at
      FROM history ORDER BY chain, store_id, sku, starts_at DESC) AS latest
GROUP BY 1, 2, 3, 4;
