-- Each batch extends the last run of most prices (its end moves) and moves the counts: room left
-- in each page lets PostgreSQL write the new row version beside the old one without touching the
-- primary key's index (a HOT update). New pages only: existing ones fill up as they were.
ALTER TABLE history SET (fillfactor = 70);
ALTER TABLE price_counts SET (fillfactor = 70);
