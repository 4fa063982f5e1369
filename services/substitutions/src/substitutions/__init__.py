"""pricestream substitutions: finds each product's substitutes at four levels."""
