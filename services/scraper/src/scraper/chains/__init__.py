"""The chain adapters: each speaks one dialect of a shop's web API (see base.ChainAdapter)."""
