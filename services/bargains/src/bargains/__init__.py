"""pricestream bargains: finds real bargains among fresh prices."""
