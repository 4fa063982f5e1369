"""Rate limits per client: a token bucket each, refilled with time (the clock passed in)."""

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Limit:
    """An allowance: so many requests a minute, up to `burst` at once."""

    per_minute: float
    burst: float


@dataclass
class Buckets:
    """Each client's remaining allowance and when it was last topped up."""

    tokens: dict[str, tuple[float, float]] = field(default_factory=dict)
    max_clients: int = 100_000

    def take(self, client: str, limit: Limit, *, now_s: float) -> float:
        """Spend one request of client's allowance; return 0, or the seconds until one is free."""
        rate = limit.per_minute / 60.0
        left, then = self.tokens.get(client, (limit.burst, now_s))
        left = min(limit.burst, left + (now_s - then) * rate)
        if left >= 1.0:
            if client not in self.tokens and len(self.tokens) >= self.max_clients:
                # Bounded memory: forget the client seen longest ago (dicts keep insertion order).
                self.tokens.pop(next(iter(self.tokens)))
            self.tokens[client] = (left - 1.0, now_s)
            return 0.0
        self.tokens[client] = (left, now_s)
        return (1.0 - left) / rate
