"""Who is calling and how often: anonymous clients by address, token holders by token."""

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fastapi import Request

from catalogue.domain.throttle import Buckets, Limit
from catalogue.problems import ProblemError

TokenLookup = Callable[[str], Awaitable[str | None]]
"""Return the name of a token's holder, or None when the token is unknown."""

TOKEN_CACHE_S = 60.0


@dataclass(eq=False)  # hashed by identity: FastAPI caches dependencies by them
class Throttle:
    """Spend a request of the caller's allowance, or refuse it with 429 and Retry-After."""

    anonymous: Limit
    token: Limit
    lookup: TokenLookup
    monotonic: Callable[[], float] = time.monotonic
    buckets: Buckets = field(default_factory=Buckets)
    _names: dict[str, tuple[str | None, float]] = field(default_factory=dict)

    async def __call__(self, request: Request) -> str:
        """Check the caller against its limit; return who it is (token:NAME or anon:ADDRESS)."""
        now = self.monotonic()
        header = request.headers.get("authorization")
        if header is None:
            client = f"anon:{request.client.host if request.client else 'unknown'}"
            limit = self.anonymous
        else:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise ProblemError(401, "Unauthorized", "Authorization must be `Bearer <token>`")
            name = await self._name(token.strip(), now)
            if name is None:
                raise ProblemError(401, "Unauthorized", "the Bearer token is not known")
            client, limit = f"token:{name}", self.token
        wait = self.buckets.take(client, limit, now_s=now)
        if wait > 0:
            retry = max(1, int(wait + 0.999))
            raise ProblemError(
                429,
                "Too many requests",
                f"over the rate limit of {limit.per_minute:g} requests a minute; retry in {retry} s",
                headers={"Retry-After": str(retry)},
            )
        return client

    async def _name(self, token: str, now: float) -> str | None:
        """Return a token's holder, asking the database at most once a minute per token."""
        cached = self._names.get(token)
        if cached is not None and now - cached[1] < TOKEN_CACHE_S:
            return cached[0]
        name = await self.lookup(token)
        if len(self._names) > 10_000:
            self._names.clear()
        self._names[token] = (name, now)
        return name
