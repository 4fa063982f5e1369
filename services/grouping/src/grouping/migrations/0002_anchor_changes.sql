-- How many of an anchor's stored prices its latest scrape compared and changed. When most
-- changed (it moved to another pricing zone, say), its members are re-checked at once
-- instead of being answered from prices that may no longer be theirs.
ALTER TABLE stores
    ADD COLUMN compared_since_check integer NOT NULL DEFAULT 0,
    ADD COLUMN changed_since_check integer NOT NULL DEFAULT 0;
