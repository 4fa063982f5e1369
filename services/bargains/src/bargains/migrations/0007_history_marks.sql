-- A mark per placed store, drawn anew whenever its history changes: what a batch read of an
-- anchor's newest runs stays true while the anchor's mark stands, so a process may keep it
-- between batches (each replica checks the marks, one row per anchor, instead of reading
-- about one anchor's run per member's price again). Drawn from a sequence, never reused.
CREATE SEQUENCE history_marks;
ALTER TABLE placements ADD COLUMN history_mark bigint NOT NULL DEFAULT nextval('history_marks');
