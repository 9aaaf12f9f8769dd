"""Scenario files: the models (``model``) and loading them with errors that name the line."""

from .loader import ScenarioError, load_scenario, load_scenarios
from .model import Scenario

__all__ = ["Scenario", "ScenarioError", "load_scenario", "load_scenarios"]
