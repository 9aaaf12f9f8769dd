"""Scenario files: the models (``model``), loading them with errors that name the line
(``loader``) and checking them without a run, warnings included (``validate``)."""

from harness.errors import ScenarioError

from .loader import load_scenario, load_scenarios
from .model import Scenario
from .validate import Problem, check_file

__all__ = ["Problem", "Scenario", "ScenarioError", "check_file", "load_scenario",
           "load_scenarios"]
