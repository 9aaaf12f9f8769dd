"""How many ``state_changed`` events the fake Home Assistant fires, and when: the load's
public names in one place, for the many importers (harness, tests, bench) that use them.

A load profile is a rate over time (events per second). Every profile, and
:class:`ReplaySource`, is a :class:`Schedule`: it knows ``expected(t)``, the exact cumulative
number of events due ``t`` seconds after it started. The :class:`Pacer` fires
``floor(expected) - fired`` at each look, so a late event loop is caught up and over any
window the count follows the profile; :func:`run_pacer` is the loop that drives it.

Where each part lives: ``rates`` (rate and time syntax), ``profiles`` (the profiles),
``profile_parser`` (a profile from a mapping or a string), ``pacer`` (firing at the rate),
``recording`` (reading a recording) and ``replay`` (firing it again).
"""

from __future__ import annotations

from .pacer import FireResult, Pacer, Schedule, run_pacer
from .profile_parser import parse_profile
from .profiles import (
    BurstProfile,
    ConstantProfile,
    LoadProfile,
    RampProfile,
    ReplayProfile,
    SoakProfile,
    SpikeProfile,
    Step,
    StepProfile,
)
from .rates import Rate, parse_rate
from .recording import ReplayTimeline
from .replay import ReplaySource

__all__ = [
    "BurstProfile",
    "ConstantProfile",
    "FireResult",
    "LoadProfile",
    "Pacer",
    "RampProfile",
    "Rate",
    "ReplayProfile",
    "ReplaySource",
    "ReplayTimeline",
    "Schedule",
    "SoakProfile",
    "SpikeProfile",
    "Step",
    "StepProfile",
    "parse_profile",
    "parse_rate",
    "run_pacer",
]

