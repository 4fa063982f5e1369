"""pricestream catalogue: products, prices, search, baskets and export for people to use."""
