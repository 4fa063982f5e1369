"""Pure domain logic of the substitutions service: no IO, easy to test and benchmark."""
