"""No gap recovery: websocket-ingestion stores only what reached its socket.

Before issue 12 this was the design ("Home Assistant never replays: the one loss a client
cannot prevent"), and the harness counted what Home Assistant fired while nobody was
subscribed apart, so a restart of Home Assistant passed with events missing from production.
Zero loss is every state change Home Assistant made: the recorder keeps them, and the new
path must read its gaps back. Caught by the strict loss check of ``survive_ha_restart``: the
lost events are named "fired while nobody was subscribed, not recovered".

Run in ingestion's place: ``python -m tests.mutants.m16_no_gap_recovery``.
"""

from __future__ import annotations

from pipeline.ingestion.__main__ import main
from pipeline.ingestion.recovery import GapRecovery

# BUG: every subscription is taken as the start of the stream; nothing before it is asked for.
GapRecovery.on_subscribed = lambda self: None  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
