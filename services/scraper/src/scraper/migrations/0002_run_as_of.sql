-- A run may stand for a past moment (replaying a simulated day): its prices are observed
-- then and its plan is made for then. NULL: the moment each page is fetched.
ALTER TABLE scrape_runs ADD COLUMN as_of timestamptz;
