"""The one way the harness makes a rich Console: messages are never hard-wrapped.

Outside a terminal rich assumes 80 columns and breaks long lines at spaces, so the same error
reads ``not\\na directory`` in one folder and ``not a directory`` in another (the wrap falls
where the path's length puts it). A CI log, a pipe or a test must get each message on one line:
``soft_wrap`` leaves wrapping to whatever displays the text. Tables still lay out at the width.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console

__all__ = ["make_console"]


def make_console(*, stderr: bool = False, **options: Any) -> Console:
    """A Console with soft wrapping (see the module docstring); other options pass through."""
    options.setdefault("soft_wrap", True)
    return Console(stderr=stderr, **options)
