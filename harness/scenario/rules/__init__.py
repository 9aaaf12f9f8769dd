"""The migration's rules, written once and used by the runner and by the simulator alike.

Pure: no clock, no I/O, no InfluxDB, no SimPy. Each rule reads its facts through a small
evidence interface (``evidence.py``); the runner hands it the real monitor's windows and the
ledger, the simulator its model's books. What a rule decides, and the words it decides in, can
therefore not drift between the two.

- ``measures``: error rates from counters, and how a measured value reads against its threshold.
- ``triggers``: rollback triggers (window, ``for:``, the first that fires) and traffic gates.
- ``timetable``: when a fault is injected and healed (``at`` / ``for`` / ``during``).
- ``timeline``: the phases as they began and ended, and the markers, on either clock.
"""

from .evidence import Evidence, WindowEvidence
from .measures import error_rate, format_measured
from .timeline import Marker, MarkerKind, PhaseSpan, Timeline
from .timetable import FaultTimes, armed_at_start, fault_times, tied_to_step
from .triggers import Firing, TriggerState, check_gate, evaluate

__all__ = [
    "Evidence",
    "FaultTimes",
    "Firing",
    "Marker",
    "MarkerKind",
    "PhaseSpan",
    "Timeline",
    "TriggerState",
    "WindowEvidence",
    "armed_at_start",
    "check_gate",
    "error_rate",
    "evaluate",
    "fault_times",
    "format_measured",
    "tied_to_step",
]
