-- A mark per store, drawn anew whenever its latest prices may have changed: what a batch read of
-- an anchor's prices stays true while the anchor's mark stands, so a process may keep it between
-- batches (each replica checks the marks, one row per anchor, instead of reading about one
-- anchor's price per member's price again). Drawn from a sequence, never reused.
CREATE SEQUENCE price_marks;
ALTER TABLE stores ADD COLUMN price_mark bigint NOT NULL DEFAULT nextval('price_marks');
