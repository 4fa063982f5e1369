"""pricestream's operator side: the `pricestream` CLI and the embedded local stack."""
