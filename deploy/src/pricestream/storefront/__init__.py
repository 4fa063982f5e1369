"""A deterministic simulated storefront: several supermarket chains' online shops to scrape."""
