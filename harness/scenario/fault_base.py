"""What every fault of a scenario file has: its timing (``at``, ``for``, ``during``).

Apart from harness/scenario/faults.py so that a family of faults can live in a module of its
own (harness/scenario/host_faults.py) without importing the union that lists it.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from harness.scenario.durations import Duration

__all__ = ["_Timed", "one_or_many"]


class _Timed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    at: Duration = 0.0
    for_: Duration | None = Field(default=None, alias="for")
    # scenario-level only: "traffic 50" = while the traffic step at 50% holds
    during: Annotated[str, Field(pattern=r"^traffic\s+\d{1,3}$")] | None = None

    def describe(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError


def one_or_many(value: Any) -> Any:
    """``service: storage`` and ``service: [storage, enrichment]`` alike."""
    return [value] if isinstance(value, str) else value
