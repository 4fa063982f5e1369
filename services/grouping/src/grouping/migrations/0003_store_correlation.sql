-- The correlation id of the events that brought each store's latest prices (a scrape run's),
-- so the groups, checks and re-scrapes a cycle decides carry it on: a trace follows a run
-- into the groups it changed.
ALTER TABLE stores ADD COLUMN last_correlation_id uuid;
