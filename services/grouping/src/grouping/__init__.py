"""pricestream grouping: finds stores that charge the same, checks and prunes them."""
