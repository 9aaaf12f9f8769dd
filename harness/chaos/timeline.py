"""The chaos migration's timeline: when each phase and traffic step starts, and the windows
a fault may be drawn in (see harness/chaos/schedule.py for what each window means)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ANY", "LEGACY_OWNS_ALL", "MIN_DURATION", "NEW_ONLY", "NEW_OWNS_ALL", "TRAFFIC_STEPS",
           "WINDOWS", "Timeline"]

MIN_DURATION = 20.0  # seconds: below this the windows leave no room to fail and recover
TRAFFIC_STEPS = (10, 25, 50, 75, 90, 100)
_ROUTING_MARGIN = 2.0  # a routing change takes effect ~1 s after it is asked for (lead_ms)

ANY, LEGACY_OWNS_ALL, NEW_OWNS_ALL, NEW_ONLY = ("any", "legacy_owns_all", "new_owns_all",
                                                "new_only")
WINDOWS = (ANY, LEGACY_OWNS_ALL, NEW_OWNS_ALL, NEW_ONLY)


# -- the migration's timeline ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timeline:
    """The chaos migration's plan in real seconds from the start of the parallel phase."""

    duration: float

    @property
    def parallel(self) -> float:
        return round(0.2 * self.duration, 1)

    @property
    def step_hold(self) -> float:
        return round(0.08 * self.duration, 1)

    @property
    def t_traffic(self) -> float:
        return self.parallel

    def t_step(self, percent: int) -> float:
        return round(self.t_traffic + TRAFFIC_STEPS.index(percent) * self.step_hold, 1)

    @property
    def t_cleanup(self) -> float:
        return round(self.t_traffic + len(TRAFFIC_STEPS) * self.step_hold, 1)

    @property
    def cleanup(self) -> float:
        return round(self.duration - self.t_cleanup, 1)

    @property
    def recover(self) -> float:
        """Every fault has ended this long before the end of the migration."""
        return max(2.0, round(0.08 * self.duration, 1))

    def window(self, name: str) -> tuple[float, float]:
        end = round(self.duration - self.recover, 1)
        return {
            ANY: (0.5, end),
            # ingestion must be back (and subscribed) before the 10 % step takes effect
            LEGACY_OWNS_ALL: (0.5, round(self.t_traffic - _ROUTING_MARGIN, 1)),
            NEW_OWNS_ALL: (round(self.t_step(100) + _ROUTING_MARGIN, 1), end),
            NEW_ONLY: (round(self.t_cleanup + _ROUTING_MARGIN, 1), end),
        }[name]

    def anchors(self) -> list[tuple[str, float]]:
        """The phases faults are anchored to, with their planned start."""
        return [("parallel", 0.0), ("traffic_switch", self.t_traffic),
                ("cleanup", self.t_cleanup)]

    def anchor(self, at: float) -> tuple[str, float]:
        """The phase ``at`` falls in and the offset from its start."""
        name, start = "parallel", 0.0
        for phase, t in self.anchors():
            if t <= at + 1e-9:
                name, start = phase, t
        return name, round(at - start, 3)

    def phase_at(self, t: float) -> str:
        """Where the migration stands at ``t``, in words, for the schedule table."""
        if t < self.t_traffic:
            return "parallel run"
        if t < self.t_cleanup:
            percent = TRAFFIC_STEPS[min(len(TRAFFIC_STEPS) - 1,
                                        int((t - self.t_traffic) // max(self.step_hold, 1e-9)))]
            return f"traffic {percent}%"
        return "cleanup (legacy stopped)"
