"""Issue 12: a storage that refuses events "from the future" by its own clock.

A sanity check added to storage's intake: an event whose time_fired is more than 5 s after
storage's wall clock must be a bad clock upstream, so it is refused one by one (the contract's
individual rejection, which enrichment dead-letters). With every clock right it never fires:
Home Assistant's time_fired is always in storage's past. When storage's own clock runs behind
(clock_skew), every live event is "from the future" and goes to the dead-letter table: lost.
Caught by survive_clock_skew's loss check (storage 30 s behind during the 25% step).

Run in storage's place: ``python -m tests.mutants.m18_rejects_future_events``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from pipeline.storage import store
from pipeline.storage.__main__ import main
from pipeline.storage.intake import Intake, Rejection, judge_events

FUTURE_S = 5.0


def _fired_ns(item: Any) -> int | None:
    value = item.get("time_fired_ns") if isinstance(item, dict) else None
    # Anything else is judge_events' to refuse, with its own reason.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def judge_with_clock_check(items: Sequence[Any], *, stored_at_ns: int) -> Intake:
    # BUG: storage's own clock is taken as the truth about Home Assistant's.
    limit = time.time_ns() + int(FUTURE_S * 1e9)
    future = {i for i, item in enumerate(items) if (t := _fired_ns(item)) is not None and t > limit}
    kept = [i for i in range(len(items)) if i not in future]
    intake = judge_events([items[i] for i in kept], stored_at_ns=stored_at_ns)
    intake.rejected = [Rejection(kept[r.index], r.event, r.reason, r.kind) for r in intake.rejected]
    intake.rejected += [Rejection(i, None, "time_fired is in the future", "future")
                        for i in sorted(future)]
    return intake


store.judge_events = judge_with_clock_check  # type: ignore[assignment]

if __name__ == "__main__":
    main()
