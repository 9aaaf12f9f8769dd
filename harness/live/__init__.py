"""Live runs: a scenario against a Home Assistant the harness did not start (staging, a home).

The harness cannot see such a server's connections nor make it fire, so it keeps its own
witness subscription as the ledger (`witness`), refuses what only the fake can do (`rules`),
and otherwise runs the plan exactly as against the fake (`side`).
"""

from harness.errors import WitnessError

from .rules import live_problems
from .side import LiveHomeAssistant, LiveTarget
from .witness import Witness

__all__ = ["LiveHomeAssistant", "LiveTarget", "Witness", "WitnessError", "live_problems"]
