-- Each sighting updates a store's current price (and the end of its run): room left in each page
-- lets PostgreSQL write the new row version beside the old one without touching the indexes
-- when no indexed column changed (a HOT update). New pages only: existing ones fill up as they were.
ALTER TABLE prices SET (fillfactor = 70);
ALTER TABLE history SET (fillfactor = 70);
