-- What each handled event was part of, so `pricestream trace` can follow a correlation id
-- through every service's processed events. Rows from before stay without it.

ALTER TABLE processed_events
    ADD COLUMN IF NOT EXISTS correlation_id uuid,
    ADD COLUMN IF NOT EXISTS producer text,
    ADD COLUMN IF NOT EXISTS occurred_at timestamptz;

CREATE INDEX IF NOT EXISTS processed_events_correlation ON processed_events (correlation_id);
