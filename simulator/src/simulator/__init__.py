"""The simulated outside world: supermarket chains' online shops with their ground truth, and the demo.

A fake of what pricestream scrapes, not a part of it: no service imports it, and it imports no
service nor the operator CLI. `python -m simulator` serves the storefront (`simulator.app` over
the pure `simulator.world`); `simulator.story` runs the demo against a running stack and scores
its answers with `simulator.evaluation`.
"""
