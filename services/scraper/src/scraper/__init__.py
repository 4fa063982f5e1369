"""pricestream scraper: collects shelf prices and publishes them."""
