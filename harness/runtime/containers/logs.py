"""Container output into the run directory: while a container runs, a thread copies it into
``logs/<service>.log`` (the docker SDK streams by blocking), so the files are live during a
run, complete once it stops, and ``log_tail`` reads a file instead of waiting on the engine."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from docker.models.containers import Container

from .host import ENGINE_ERRORS

__all__ = ["copy_logs", "docker_time"]

log = logging.getLogger(__name__)


def copy_logs(container: Container, since: float, path: Path,
               on_end: Callable[[], None]) -> None:
    """Append the container's output from ``since`` to ``path`` until the container stops."""
    try:
        with path.open("ab") as out:
            for chunk in container.logs(stream=True, follow=True, since=since):
                out.write(chunk)
                out.flush()
    except (*ENGINE_ERRORS, OSError) as exc:  # the container was removed under us
        log.debug("log copy of %s ended: %s", container.name, exc)
    finally:
        on_end()


_DOCKER_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def docker_time(text: str) -> float:
    """Docker's RFC 3339 time with nanoseconds, which datetime cannot parse, as epoch seconds."""
    m = _DOCKER_TIME.match(text)
    if m is None:
        raise ValueError(f"not a docker timestamp: {text!r}")
    whole, frac, zone = m.groups()
    seconds = datetime.fromisoformat(whole + ("+00:00" if zone == "Z" else zone)).timestamp()
    return seconds + (float(f"0.{frac}") if frac else 0.0)
