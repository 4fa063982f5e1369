-- The lowest and highest price counted for a product on a day: widened whenever a price is
-- counted there and never narrowed, so a day's range holds every price still counted on it.
-- The bounds that spare most prices a median (may_be_outlier) are then one row per product
-- and day, not a walk through price_counts: a wider range only costs a median more.
CREATE TABLE price_ranges (
    chain text NOT NULL,
    sku text NOT NULL,
    seen_on date NOT NULL,
    lowest integer NOT NULL,
    highest integer NOT NULL,
    PRIMARY KEY (chain, sku, seen_on)
);

INSERT INTO price_ranges (chain, sku, seen_on, lowest, highest)
SELECT chain, sku, seen_on, min(price_cents), max(price_cents)
FROM price_counts WHERE stores > 0
GROUP BY chain, sku, seen_on;
