-- Each batch of prices is copied into a staging table and merged into latest_prices with one
-- statement, instead of an `unnest` of one array per column. UNLOGGED: what it holds lives
-- only inside one transaction (it is emptied before commit), so it needs no WAL and no
-- crash safety. No batch column is needed either: rows a transaction has not committed are
-- invisible to every other one, so two replicas staging at once each see only their own.
CREATE UNLOGGED TABLE incoming_prices (
    chain text NOT NULL,
    store_id text NOT NULL,
    sku text NOT NULL,
    price_cents integer NOT NULL,
    was_price_cents integer,
    available boolean NOT NULL,
    observed_at timestamptz NOT NULL
);
-- Every batch rewrites each of its stores' prices with a newer observed_at. Room left in
-- each page lets PostgreSQL update a row in place of its page (a HOT update: no index entry
-- written), as no indexed column changes. It applies to pages written from now on.
ALTER TABLE latest_prices SET (fillfactor = 80);
