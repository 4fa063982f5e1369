-- What servicekit keeps in every service's schema: the events it handled (so a
-- redelivered event changes nothing) and the transactional outbox.
-- IF NOT EXISTS: databases from before servicekit owned these tables already have them.

CREATE TABLE IF NOT EXISTS processed_events (
    event_id uuid PRIMARY KEY,
    event_type text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS outbox (
    id bigserial PRIMARY KEY,
    topic text NOT NULL,
    key bytea NOT NULL,
    value bytea NOT NULL,
    headers jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
