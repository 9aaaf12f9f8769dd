"""The harness's own errors, one hierarchy in httpx's style: catch ``CutoverError`` for any of
them, a family (``InvalidInput``, ``RuntimeFailed``...) for its kind, or the specific one.

Each also keeps the built-in base it has always had (``ValueError`` for bad input,
``RuntimeError`` for what failed while running), so code that catches those still does.
``str(error)`` is always ready to show a person: it says what is wrong and, where it can,
what to do. Imports nothing from the harness, so any module may raise these.

    CutoverError
    ├── InvalidInput (ValueError): what a person wrote cannot be used
    │   ├── ScenarioError: a scenario file (every error, with its file and line)
    │   ├── PipelineFileError: a pipeline file (every error, with its file and line)
    │   ├── UnreadableYaml: a YAML file that gives no mapping, before either of those
    │   ├── ScheduleError: a chaos vocabulary, duration or schedule file
    │   ├── SimulateInputError: an option of ``cutover simulate``
    │   └── ReportError: a run.json the report cannot be rendered from
    ├── RuntimeUnavailable (RuntimeError): the runtime cannot run here, or not this scenario
    ├── RuntimeFailed (RuntimeError): a runtime could not do what a step asked
    │   └── Unsupported (NotImplementedError): this runtime cannot do that at all
    ├── ImagesError (RuntimeError): the container images could not be had
    │   ├── EngineUnavailable: no Docker engine answers
    │   └── CommandFailed: a command the build needs exited non-zero
    └── ComponentError (RuntimeError): something the harness drives refused or failed
        ├── ControlPlaneError: admin-api, the migration's control plane
        ├── ToxiproxyError: the fault proxy
        ├── InfluxReadError: reading InfluxDB back
        ├── WitnessError: a real Home Assistant, for the witness subscription
        └── TmpfsError: mounting, filling or unmounting a small disk

Not here: the exceptions that carry control flow rather than report an error (a rollback
trigger firing, a failed scenario reported to pytest, the shrinker's stop signal).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "CommandFailed",
    "ComponentError",
    "ControlPlaneError",
    "CutoverError",
    "EngineUnavailable",
    "ImagesError",
    "InfluxReadError",
    "InvalidInput",
    "PipelineFileError",
    "ReportError",
    "RuntimeFailed",
    "RuntimeUnavailable",
    "ScenarioError",
    "ScheduleError",
    "SimulateInputError",
    "TmpfsError",
    "ToxiproxyError",
    "UnreadableYaml",
    "Unsupported",
    "WitnessError",
]


class CutoverError(Exception):
    """Every error of the harness's own."""


# -- bad input --------------------------------------------------------------------------------


class InvalidInput(CutoverError, ValueError):
    """What a person wrote (a file, an option) cannot be used; the message says what to write
    instead."""


class ScenarioError(InvalidInput):
    """A scenario file that cannot be used; ``str()`` is ready to show a person."""


class PipelineFileError(InvalidInput):
    """A pipeline file that cannot be used (or a scenario it cannot run); ``str()`` is ready to
    show a person."""


class ScheduleError(InvalidInput):
    """A vocabulary, duration or schedule file that cannot be used; the message says why."""


class UnreadableYaml(InvalidInput):
    """A YAML file that gives no mapping (missing, unreadable, not YAML, not a mapping);
    ``line`` where the file says so (None: the whole file). Each kind of file phrases it as
    its own error (harness/yaml_source.py)."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class SimulateInputError(InvalidInput):
    """Bad input to ``cutover simulate``; the message says what to write instead."""


class ReportError(InvalidInput):
    """run.json could not be read as a run result; the message names the file and the fault."""


# -- runtimes ---------------------------------------------------------------------------------


class RuntimeUnavailable(CutoverError, RuntimeError):
    """The runtime cannot run here or cannot run this scenario; the message says why."""


class RuntimeFailed(CutoverError, RuntimeError):
    """A runtime could not do what a step asked; the message says what and why."""


class Unsupported(RuntimeFailed, NotImplementedError):
    """This runtime cannot do that at all (a network fault on processes). Also a
    RuntimeFailed, so a run that asks for it is aborted with the message rather than
    crashed."""


class ImagesError(CutoverError, RuntimeError):
    """Images could not be had; ``str(error)`` is one line saying why and what to do."""


class EngineUnavailable(ImagesError):
    """No Docker engine answers (or no docker CLI is installed)."""


class CommandFailed(ImagesError):
    """A command the build needs exited non-zero; ``tail`` holds its last lines of output."""

    def __init__(self, message: str, tail: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.tail = list(tail)


# -- what the harness drives ------------------------------------------------------------------


class ComponentError(CutoverError, RuntimeError):
    """A component the harness drives (admin-api, the fault proxy, InfluxDB, Home Assistant,
    the machine's mounts) refused a request or failed at it."""


class ControlPlaneError(ComponentError):
    """admin-api refused or failed a request of the harness (routing, shadow, the table)."""


class ToxiproxyError(ComponentError):
    """The proxy refused a request; the message carries its own error text."""


class InfluxReadError(ComponentError):
    """InfluxDB could not be read back (the accounting's and the monitor's queries)."""


class WitnessError(ComponentError):
    """The witness could not reach, authenticate to or subscribe to Home Assistant."""


class TmpfsError(ComponentError):
    """A mount, unmount or fill that did not happen; the message says why and what to do."""
