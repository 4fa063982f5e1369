-- The catalogue's read model, built from events only: products, current prices, change-only
-- history, where stores sit, substitutes, bargains, and the API's tokens.
-- pg_trgm lives in the `extensions` schema, created by the superuser when the stack is provisioned.

CREATE TABLE products (
    chain text NOT NULL,
    sku text NOT NULL,
    name text NOT NULL,
    brand text,
    size text,
    category text,
    shared_category text,
    barcode text,
    url text,
    -- name and brand folded (lower case, no accents, hyphenated words also joined) for search
    search_text text NOT NULL,
    observed_at timestamptz NOT NULL,
    PRIMARY KEY (chain, sku)
);
-- GiST answers "the closest names first" from the index (KNN), without scoring every match.
CREATE INDEX products_search ON products USING gist (search_text extensions.gist_trgm_ops);
CREATE INDEX products_by_barcode ON products (barcode) WHERE barcode IS NOT NULL;
CREATE INDEX products_by_shared_category ON products (shared_category);

-- What each store charged last: a newer observation replaces it, an older one changes nothing.
CREATE TABLE prices (
    chain text NOT NULL,
    store_id text NOT NULL,
    sku text NOT NULL,
    price_cents integer NOT NULL,
    was_price_cents integer,
    available boolean NOT NULL,
    member_price_cents integer,
    multibuy_quantity integer,
    multibuy_total_cents integer,
    sold_by text NOT NULL,
    stated_cents integer,
    stated_quantity integer,
    stated_unit text,
    stated_text text,
    observed_at timestamptz NOT NULL,
    PRIMARY KEY (chain, store_id, sku)
);
CREATE INDEX prices_by_product ON prices (chain, sku, price_cents);

-- Every store priced, for the export to walk in order (members are known from placements).
CREATE TABLE stores (
    chain text NOT NULL,
    store_id text NOT NULL,
    PRIMARY KEY (chain, store_id)
);

-- One row per run of an unchanged price at a store: a new row only when it changes.
CREATE TABLE history (
    chain text NOT NULL,
    store_id text NOT NULL,
    sku text NOT NULL,
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    price_cents integer NOT NULL,
    was_price_cents integer,
    PRIMARY KEY (chain, store_id, sku, starts_at)
);

-- The newest version seen of each group, so a late version changes nothing.
CREATE TABLE store_groups (
    chain text NOT NULL,
    group_id text NOT NULL,
    group_version integer NOT NULL,
    PRIMARY KEY (chain, group_id)
);

-- A member store is answered by its group's anchor (an anchor sits here as its own anchor).
CREATE TABLE placements (
    chain text NOT NULL,
    store_id text NOT NULL,
    group_id text NOT NULL,
    anchor_store_id text NOT NULL,
    PRIMARY KEY (chain, store_id)
);
CREATE INDEX placements_by_group ON placements (chain, group_id);

-- A product's current substitutes, replaced whole by a newer SubstitutionsChanged.
CREATE TABLE substitute_sets (
    chain text NOT NULL,
    sku text NOT NULL,
    occurred_at timestamptz NOT NULL,
    PRIMARY KEY (chain, sku)
);
CREATE TABLE substitutes (
    chain text NOT NULL,
    sku text NOT NULL,
    level text NOT NULL,
    other_chain text NOT NULL,
    other_sku text NOT NULL,
    score double precision NOT NULL,
    reason text NOT NULL,
    PRIMARY KEY (chain, sku, other_chain, other_sku)
);
CREATE INDEX substitutes_by_other ON substitutes (other_chain, other_sku);

-- Bargains as announced; an expired one stays as a tombstone so a late announcement cannot revive it.
CREATE TABLE bargains (
    bargain_id text PRIMARY KEY,
    chain text NOT NULL,
    store_id text NOT NULL,
    sku text NOT NULL,
    kind text NOT NULL,
    price_cents integer NOT NULL,
    reference_cents integer NOT NULL,
    score double precision NOT NULL,
    reason text NOT NULL,
    observed_at timestamptz NOT NULL,
    expired boolean NOT NULL
);
CREATE INDEX bargains_live ON bargains (score DESC) WHERE NOT expired;

-- API tokens: only a hash is kept.
CREATE TABLE api_tokens (
    name text PRIMARY KEY,
    token_sha256 text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL
);
