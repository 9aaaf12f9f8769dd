"""Issue 13: the shadow is sampled, so the parallel run compares half of what it claims to.

An "optimisation" in data-storage writes only every other shadow event ("a sample is enough
to compare the paths, and it halves the shadow's cost") and acknowledges the rest. Production
is untouched, and every shadow point there is consistent with it. Caught only by shadow
completeness: each event legacy owned while shadow was on must be in shadow ("shadow: missing
(owned by legacy at 0%, shadow on)").

Run in storage's place: ``python -m tests.mutants.m20_shadow_sampled``.
"""

from __future__ import annotations

from typing import Any

from pipeline.storage import intake, store
from pipeline.storage.__main__ import main

_judge = intake.judge_events


def judge_sampled(items: Any, *, stored_at_ns: int) -> intake.Intake:
    judged = _judge(items, stored_at_ns=stored_at_ns)
    # BUG: every other shadow event is acknowledged and never written.
    judged.lines["shadow"] = judged.lines["shadow"][::2]
    judged.keys["shadow"] = judged.keys["shadow"][::2]
    return judged


store.judge_events = judge_sampled  # type: ignore[assignment]

if __name__ == "__main__":
    main()
