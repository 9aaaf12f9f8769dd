"""Context as identity: enrichment deduplicates events by Home Assistant's context id.

Wave 1's real defect, found against a real Home Assistant: one action (an automation run, a
scene, a service call on several entities) gives ONE context id to every state change it
causes, so enrichment kept the first event of each context and counted the rest "duplicates".
The new chain stored 102 of 408 events while /health said ok. Not a row of FAILURE_MODES.md;
it is the defect the fake could not show until it shared contexts as Home Assistant does.
Caught by the loss check of any scenario whose fleet shares contexts (all of them, at the
fleet's defaults): the lost events are named with the context a stored sibling carries.

Run in enrichment's place: ``python -m tests.mutants.m15_dedupe_by_context``.
"""

from __future__ import annotations

from pipeline.common.events import Event
from pipeline.enrichment.__main__ import main

# BUG: "an event is its context" (what the data contract said before it was corrected).
Event.key = property(lambda self: self.context_id)  # type: ignore[assignment,method-assign]

if __name__ == "__main__":
    main()
