"""The weather API's faults, in force until changed: slow, failing, rate limited or down.

A harness in the same process calls :class:`WeatherFaults`; one in another process sends
``PUT /_faults`` with a :class:`FaultSpec`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["DownListener", "FaultSpec", "WeatherFaults"]


class FaultSpec(BaseModel):
    """The whole fault set; also the body of ``PUT /_faults`` (missing keys mean "off")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    delay_s: float = Field(default=0.0, ge=0, le=600)
    error_status: int = Field(default=500, ge=400, le=599)
    error_fraction: float = Field(default=0.0, ge=0, le=1)
    rate_limited: bool = False
    retry_after_s: int = Field(default=60, ge=0)
    down: bool = False
    #: With ``down``: come back after this many seconds (required over HTTP).
    down_s: float | None = Field(default=None, gt=0, le=3600)

    @model_validator(mode="before")
    @classmethod
    def _down_s_means_down(cls, data: Any) -> Any:
        # Over HTTP, {"down_s": 3} alone is the natural spelling: it means down for 3 s.
        if isinstance(data, dict) and data.get("down_s") is not None and "down" not in data:
            return {**data, "down": True}
        return data


DownListener = Callable[[bool], None]


class WeatherFaults:
    """The faults in force. Methods are synchronous and take effect at once; call them from the
    event loop the server runs in (``down(seconds)`` schedules its own end on that loop)."""

    def __init__(self, seed: int = 0) -> None:
        self._spec = FaultSpec()
        self._rng = random.Random(f"faults:{seed}")  # which requests fail: reproducible too
        self._listeners: list[DownListener] = []
        self._up_timer: asyncio.TimerHandle | None = None

    @property
    def spec(self) -> FaultSpec:
        return self._spec

    @property
    def is_down(self) -> bool:
        return self._spec.down

    def slow(self, delay_s: float) -> None:
        self._set(delay_s=delay_s)

    def errors(self, status: int = 500, fraction: float = 1.0) -> None:
        self._set(error_status=status, error_fraction=fraction)

    def rate_limit(self, retry_after_s: int = 60) -> None:
        self._set(rate_limited=True, retry_after_s=retry_after_s)

    def down(self, seconds: float | None = None) -> None:
        """Connection refused (for ``seconds``, or until `up`/`clear`)."""
        self._set(down=True, down_s=seconds)

    def up(self) -> None:
        self._set(down=False, down_s=None)

    def clear(self) -> None:
        self.apply(FaultSpec())

    def apply(self, spec: FaultSpec) -> None:
        """Replace the whole fault set (what ``PUT /_faults`` does)."""
        was_down = self._spec.down
        self._spec = spec
        if self._up_timer is not None:
            self._up_timer.cancel()
            self._up_timer = None
        if spec.down and spec.down_s is not None:
            self._up_timer = asyncio.get_running_loop().call_later(spec.down_s, self.up)
        if spec.down != was_down:
            for listener in list(self._listeners):
                listener(spec.down)

    def watch(self, listener: DownListener) -> Callable[[], None]:
        """Call ``listener(is_down)`` whenever ``down`` flips; returns the unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def draw_error(self) -> int | None:
        """The status this request must fail with, or None (rate limit first, then errors)."""
        spec = self._spec
        if spec.rate_limited:
            return 429
        if spec.error_fraction and self._rng.random() < spec.error_fraction:
            return spec.error_status
        return None

    def _set(self, **changes: Any) -> None:
        self.apply(FaultSpec.model_validate({**self._spec.model_dump(), **changes}))
