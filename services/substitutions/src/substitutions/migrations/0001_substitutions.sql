-- Products as the chains describe them, cached name embeddings, each product's substitutes.

-- The latest description of each product; an older observation never replaces a newer one.
CREATE TABLE products (
    chain text NOT NULL,
    sku text NOT NULL,
    name text NOT NULL,
    brand text,
    size text,
    category text,
    barcode text,
    observed_at timestamptz NOT NULL,
    PRIMARY KEY (chain, sku)
);

-- A name is encoded once per model: float32 unit vectors, little-endian.
CREATE TABLE embeddings (
    model text NOT NULL,
    text text NOT NULL,
    vector bytea NOT NULL,
    PRIMARY KEY (model, text)
);

-- The complete, current substitute list of a product, as last published.
CREATE TABLE substitutes (
    chain text NOT NULL,
    sku text NOT NULL,
    substitutes jsonb NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chain, sku)
);
