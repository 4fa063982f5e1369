"""The catalogue's pure rules: no IO, the clock passed in."""
