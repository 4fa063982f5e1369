"""L3's weights: what it takes off the blend of name similarities, and the trigrams' share of it.

`python -m benchmarks.substitutions_weights` learns them from labelled pairs (a search that
ranks the TRAIN split's partners best) and reports train and test; `--write` writes them here.
These are the weights once set by hand: the learned ones (0.55, 0.35, 0.2, 0 on 2026-11-29)
ranked the test split's partners no better through the matcher and offered fewer of them
(docs/benchmarks.md, issue 19), so these stand; the other tier is weighed 0 both ways.
"""

NGRAM_WEIGHT = 0.4
"""The character trigrams' share of how alike two names are; the embeddings' is the rest."""
SIZE_PER_DOUBLING = 0.3
"""What L3 takes off a candidate per doubling of size between the two."""
PER_VARIANT_WORD = 0.1
"""What L3 takes off a candidate per variant word (light, organic) on one side only."""
OTHER_TIER = 0.0
"""What L3 takes off a candidate of another tier: a maker's brand for a house brand, or the other way."""
PER_MISSING_WORD = 0.02
"""What L3 takes off a candidate per word telling items apart (penne, farfalle) the query has, it not."""
