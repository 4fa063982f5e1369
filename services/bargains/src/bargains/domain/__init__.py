"""Pure domain logic of the bargains service: no IO, easy to test and benchmark."""
