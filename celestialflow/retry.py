"""Which exceptions are retried, and how long to wait before each new attempt."""

from __future__ import annotations

import random
from dataclasses import dataclass

#: Transient failures worth another attempt by default: network and time-outs.
DEFAULT_RETRY_EXCEPTIONS: tuple[type[BaseException], ...] = (
    ConnectionError,  # includes ConnectionResetError, ConnectionRefusedError, BrokenPipeError
    TimeoutError,
    InterruptedError,
)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: ``base * factor**(attempt-1)``, capped, with relative jitter.

    ``attempt`` is the number of the retry (1 for the first retry).
    """

    base: float = 0.05
    factor: float = 2.0
    cap: float = 5.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if self.base < 0 or self.factor < 1 or self.cap < 0 or not 0 <= self.jitter <= 1:
            raise ValueError(
                f"invalid backoff (base={self.base}, factor={self.factor}, cap={self.cap}, "
                f"jitter={self.jitter}): need base>=0, factor>=1, cap>=0, 0<=jitter<=1"
            )

    def delay(self, attempt: int) -> float:
        d = min(self.cap, self.base * self.factor ** max(attempt - 1, 0))
        if self.jitter:
            d *= 1.0 + self.jitter * random.random()
        return d
