-- Store directory, scrape plan and durable progress, products, quarantine.

CREATE TABLE stores (
    chain text NOT NULL,
    store_id text NOT NULL,
    name text NOT NULL,
    state text,
    postcode text,
    -- unknown: not in a group yet (scrape to discover); anchor: scraped routinely;
    -- member: priced like its anchor, scraped only as a sample to check that.
    role text NOT NULL DEFAULT 'unknown' CHECK (role IN ('unknown', 'anchor', 'member')),
    group_id text,
    group_version integer,
    last_scraped_at timestamptz,
    PRIMARY KEY (chain, store_id)
);

CREATE TABLE rescrape_requests (
    chain text NOT NULL,
    store_id text NOT NULL,
    reason text NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chain, store_id)
);

CREATE TABLE scrape_runs (
    run_id text PRIMARY KEY,
    scope text NOT NULL,
    day integer,
    status text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'finished', 'failed')),
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    error text
);

-- One row per page to fetch; `done_at` is set in the same transaction that stages the
-- page's events in the outbox, so a restarted run never fetches a finished page again.
CREATE TABLE scrape_tasks (
    run_id text NOT NULL REFERENCES scrape_runs (run_id) ON DELETE CASCADE,
    chain text NOT NULL,
    store_id text NOT NULL,
    category text NOT NULL,
    page integer NOT NULL,
    reason text NOT NULL,
    done_at timestamptz,
    observations integer,
    PRIMARY KEY (run_id, chain, store_id, category, page)
);
CREATE INDEX scrape_tasks_pending ON scrape_tasks (run_id) WHERE done_at IS NULL;

CREATE TABLE products (
    chain text NOT NULL,
    sku text NOT NULL,
    name text NOT NULL,
    brand text,
    size text,
    category text,
    barcode text,
    url text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chain, sku)
);

-- What was ingested, so the same observation sent twice is skipped.
CREATE TABLE ingested_prices (
    chain text NOT NULL,
    store_id text NOT NULL,
    sku text NOT NULL,
    observed_at timestamptz NOT NULL,
    price_cents integer NOT NULL,
    PRIMARY KEY (chain, store_id, sku, observed_at)
);

CREATE TABLE quarantine (
    id bigserial PRIMARY KEY,
    source text NOT NULL,
    reason text NOT NULL,
    raw jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
