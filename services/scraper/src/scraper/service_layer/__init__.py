"""The scraper's use cases, each in a unit of work: plan and scrape runs, keep the plan, ingest.

- `runs`: plan a run (every page recorded), fetch a page, stage it, close the run;
- `plan`: group changes and re-scrape requests that shape the next runs;
- `ingestion`: rows from files and other scrapers, validated, deduplicated, staged;
- `staging`: observations and product descriptions into outgoing events.
"""
