"""Pure domain logic of the grouping service: no IO, easy to test and benchmark."""
