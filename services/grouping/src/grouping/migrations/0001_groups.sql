-- The latest price per (store, product), store groups.

-- Latest fresh price of a product at a store. A pruned member holds only the prices
-- that differ from its anchor's; the rest are answered from the anchor.
CREATE TABLE latest_prices (
    chain text NOT NULL,
    store_id text NOT NULL,
    sku text NOT NULL,
    price_cents integer NOT NULL,
    was_price_cents integer,
    available boolean NOT NULL,
    observed_at timestamptz NOT NULL,
    PRIMARY KEY (chain, store_id, sku)
);

CREATE TABLE stores (
    chain text NOT NULL,
    store_id text NOT NULL,
    group_id text,
    observed integer NOT NULL DEFAULT 0,
    last_observed_at timestamptz,
    -- when its latest prices arrived here: a store is judged once its scrape goes quiet
    last_received_at timestamptz,
    -- set when prices arrived for a member since its last check: check it when quiet
    check_due boolean NOT NULL DEFAULT false,
    checked_at timestamptz,
    PRIMARY KEY (chain, store_id)
);
CREATE INDEX stores_by_group ON stores (group_id);

CREATE TABLE groups (
    group_id text PRIMARY KEY,
    chain text NOT NULL,
    anchor_store_id text NOT NULL,
    version integer NOT NULL DEFAULT 1,
    rescrape_requested_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);
