"""A token bucket: up to ``burst`` tokens, refilled at ``rate`` a second; each thing allowed takes one.

The one bucket of the product: the per-key limits of embedded mode and the output lines of a run use it;
production's per-key limit runs the same arithmetic inside Redis (one Lua script in
``infra/ratelimit.py``), so that concurrent replicas' read-refill-take cannot interleave."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TokenBucket:
    rate: float
    burst: float
    tokens: float
    at: float  # when ``tokens`` was last counted, on the caller's monotonic clock

    @classmethod
    def full(cls, rate: float, burst: float, now: float) -> TokenBucket:
        return cls(rate, burst, burst, now)

    def take(self, now: float) -> float:
        """Take a token: 0 when there was one, else the seconds until there is (nothing is taken)."""
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate
