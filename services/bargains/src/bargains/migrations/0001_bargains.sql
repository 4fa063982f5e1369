-- Compact price history, where each store sits, bargains, flags.

-- One row per run of an unchanged price at a store: a new row only when it changes.
CREATE TABLE history (
    chain text NOT NULL,
    store_id text NOT NULL,
    sku text NOT NULL,
    price_cents integer NOT NULL,
    was_price_cents integer,
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    PRIMARY KEY (chain, store_id, sku, starts_at)
);

-- A member store is answered by its group's anchor.
CREATE TABLE placements (
    chain text NOT NULL,
    store_id text NOT NULL,
    group_id text NOT NULL,
    group_version integer NOT NULL,
    anchor_store_id text NOT NULL,
    PRIMARY KEY (chain, store_id)
);

CREATE TABLE bargains (
    bargain_id text PRIMARY KEY,
    chain text NOT NULL,
    store_id text NOT NULL,
    sku text NOT NULL,
    category text,
    kind text NOT NULL,
    price_cents integer NOT NULL,
    reference_cents integer NOT NULL,
    score double precision NOT NULL,
    reason text NOT NULL,
    observed_at timestamptz NOT NULL
);
CREATE INDEX bargains_by_store ON bargains (chain, store_id, sku);

-- Prices that look like a bargain and are not: illusory discounts, suspicious outliers.
CREATE TABLE flags (
    chain text NOT NULL,
    store_id text NOT NULL,
    sku text NOT NULL,
    kind text NOT NULL,
    reason text NOT NULL,
    observed_at timestamptz NOT NULL,
    PRIMARY KEY (chain, store_id, sku, kind)
);

-- The same product at other chains: by barcode, and by L1/L2 substitutes when known.
CREATE TABLE products (
    chain text NOT NULL,
    sku text NOT NULL,
    barcode text,
    PRIMARY KEY (chain, sku)
);
CREATE INDEX products_by_barcode ON products (barcode) WHERE barcode IS NOT NULL;

CREATE TABLE equivalents (
    chain text NOT NULL,
    sku text NOT NULL,
    other_chain text NOT NULL,
    other_sku text NOT NULL,
    PRIMARY KEY (chain, sku, other_chain, other_sku)
);
