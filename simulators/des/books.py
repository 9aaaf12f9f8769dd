"""The model's accounting: what was fired, stored and lost, the latency of every stored event
(as wait histograms, see latency.py), and the live evidence the monitor reads.

Counts are exact (every event is counted through every stage: a job carries a count, not a
sample). "Seen live" follows the harness's monitor: it reads points whose ``time_fired`` is
within ``lookback`` of now, so an event stored later than that after it fired is in
production (the final accounting counts it) but the live loss check never sees it.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

from .jobs import PRODUCTION, Fired, Job
from .latency import Component, ShiftedLogNormal, bin_of, components, mixture_quantile

__all__ = ["Books", "LatencyFigures", "PATHS"]

PATHS = ("legacy", "new", "shadow")


@dataclass(frozen=True, slots=True)
class LatencyFigures:
    count: int
    p50_s: float
    p95_s: float
    p99_s: float
    max_s: float


@dataclass
class Books:
    dists: dict[str, ShiftedLogNormal]  # unloaded latency per path
    lookback: float
    ring_seconds: int = 64
    emitted: int = 0
    expected: int = 0
    unsubscribed: int = 0
    stored_production: int = 0
    stored_shadow: int = 0
    live_stored: int = 0  # production events the monitor has seen
    fired_subscribed: int = 0
    inconsistent: int = 0
    produced_since_tick: int = 0
    lost_by_cause: Counter[str] = field(default_factory=Counter)  # where events were lost
    cumulative: dict[str, dict[int, float]] = field(
        default_factory=lambda: {p: {} for p in PATHS})
    ring: dict[int, dict[str, dict[int, float]]] = field(default_factory=dict)
    inconsistent_at: list[tuple[float, int]] = field(default_factory=list)  # (t, points)
    _fired: deque[Fired] = field(default_factory=deque)  # not yet due for the loss check
    _young: deque[Fired] = field(default_factory=deque)  # possibly unseen, not yet due
    overdue_sum: int = 0

    # -- recording --------------------------------------------------------------------------

    def fired(self, t: float, n: int, subscribed: bool) -> Fired:
        """Every event is expected in production (zero loss counts the ones fired while nobody
        was subscribed too); only those sent to a subscriber are due for the live loss check."""
        self.emitted += n
        self.expected += n
        rec = Fired(t, n, n)
        if not subscribed:
            self.unsubscribed += n
            return rec
        self.fired_subscribed += n
        self._fired.append(rec)
        self._young.append(rec)
        return rec

    def written(self, job: Job, path: str, now: float) -> None:
        """``job`` is in InfluxDB as of ``now`` (``path``: legacy, new or shadow)."""
        n = job.n
        b = bin_of(job.wait)
        cum = self.cumulative[path]
        cum[b] = cum.get(b, 0.0) + n
        sec = int(job.stamp)
        bucket = self.ring.get(sec)
        if bucket is None:
            bucket = self.ring[sec] = {}
        hist = bucket.get(path)
        if hist is None:
            hist = bucket[path] = {}
        hist[b] = hist.get(b, 0.0) + n
        if job.target == PRODUCTION:
            self.stored_production += n
            rec = job.fired
            if rec is not None and now - job.t0 <= self.lookback:
                self.live_stored += n
                self.produced_since_tick += n
                rec.unseen -= n
                if rec.due:
                    self.overdue_sum -= n
        else:
            self.stored_shadow += n

    def lost(self, n: int, cause: str) -> None:
        if n > 0:
            self.lost_by_cause[cause] += n

    # -- live evidence ------------------------------------------------------------------------

    def overdue(self, now: float, grace: float) -> int:
        """Events sent to a subscriber more than ``grace`` ago and not seen in production
        (the harness's ``overdue``: one cursor, shared by every caller)."""
        due = now - grace
        fired = self._fired
        while fired and fired[0].t <= due:
            rec = fired.popleft()
            rec.due = True
            self.overdue_sum += rec.unseen
        return self.overdue_sum

    def settled_before(self, t: float) -> bool:
        """True when every event fired before ``t`` is seen in production or already counted
        overdue: nothing is in flight that could become overdue unnoticed."""
        young = self._young
        while young and (young[0].unseen <= 0 or young[0].due):
            young.popleft()
        return not young or young[0].t >= t

    def prune(self, now: float) -> None:
        floor = int(now) - self.ring_seconds
        for sec in [s for s in self.ring if s < floor]:
            del self.ring[sec]

    def window_parts(self, paths: tuple[str, ...], since: float) -> tuple[list[Component], float]:
        """Mixture components of the points stamped since ``since`` on ``paths``, and their
        count (whole seconds: a point belongs to the second of its ``stored_at``)."""
        start = int(since) if since == int(since) else int(since) + 1
        merged: dict[str, dict[int, float]] = {}
        for sec, bucket in self.ring.items():
            if sec < start:
                continue
            for path in paths:
                hist = bucket.get(path)
                if hist:
                    into = merged.setdefault(path, {})
                    for b, w in hist.items():
                        into[b] = into.get(b, 0.0) + w
        parts: list[Component] = []
        count = 0.0
        for path, hist in merged.items():
            parts.extend(components(self.dists[path], hist))
            count += sum(hist.values())
        return parts, count

    def snapshot(self) -> dict[str, dict[int, float]]:
        """The cumulative histograms now (for a window that outlives the ring: a gate)."""
        return {path: dict(hist) for path, hist in self.cumulative.items()}

    def parts_since(self, snap: dict[str, dict[int, float]], paths: tuple[str, ...]
                    ) -> tuple[list[Component], float]:
        """Mixture components of what was written since ``snap`` was taken."""
        parts: list[Component] = []
        count = 0.0
        for path in paths:
            before = snap.get(path, {})
            diff = {b: w - before.get(b, 0.0) for b, w in self.cumulative[path].items()
                    if w - before.get(b, 0.0) > 0}
            parts.extend(components(self.dists[path], diff))
            count += sum(diff.values())
        return parts, count

    def window_quantile(self, paths: tuple[str, ...], since: float, q: float = 95.0,
                        min_points: int = 1,
                        snap: dict[str, dict[int, float]] | None = None) -> float | None:
        if snap is not None:
            parts, count = self.parts_since(snap, paths)
        else:
            parts, count = self.window_parts(paths, since)
        if count < min_points:
            return None
        return mixture_quantile(parts, q)

    def inconsistent_since(self, since: float) -> int:
        return sum(n for t, n in self.inconsistent_at if t >= since)

    # -- final figures -------------------------------------------------------------------------

    def figures(self, paths: tuple[str, ...]) -> LatencyFigures | None:
        parts: list[Component] = []
        for path in paths:
            parts.extend(components(self.dists[path], self.cumulative[path]))
        count = int(round(sum(w for _, _, w in parts)))
        if count == 0:
            return None
        q = [mixture_quantile(parts, p) or 0.0 for p in (50.0, 95.0, 99.0)]
        top = max(0.0, min(99.9999, 100.0 * (1.0 - 0.5 / count)))
        return LatencyFigures(count, q[0], q[1], q[2], mixture_quantile(parts, top) or 0.0)
