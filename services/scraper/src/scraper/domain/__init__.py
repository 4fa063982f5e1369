"""Pure domain logic of the scraper service: no IO, easy to test and benchmark."""
