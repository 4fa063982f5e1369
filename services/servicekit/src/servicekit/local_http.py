"""One HTTP client per process for calls to the local services (polls, health checks, stats)."""

import functools

import httpx


@functools.cache
def local_http() -> httpx.Client:
    """Return this process's shared client for plain-http calls to the stack's services.

    A bare `httpx.get` builds a client, and with it a TLS context from the CA bundle, on every
    call: about 40 ms of CPU even for http://. A poller twice a second paid that on the very
    machine it measured (`pricestream bench` took a tenth of the two cores).
    """
    return httpx.Client(timeout=10.0)
