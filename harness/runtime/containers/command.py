"""``cutover images``: build the images with progress, say what was done and why."""

from __future__ import annotations

import asyncio

from rich.console import Console

from harness.console import make_console
from harness.errors import CommandFailed, EngineUnavailable, ImagesError

from .images import ensure_images

_TAIL = 15  # lines of a failed command's output shown above the one-line error


def images_command(*, force: bool, console: Console | None = None,
                   errors: Console | None = None) -> int:
    """0 when both images are there, 2 when no engine answers, 1 when a build failed."""
    console = console or make_console()
    errors = errors or make_console(stderr=True)
    try:
        asyncio.run(ensure_images(console, force=force))
    except EngineUnavailable as exc:
        errors.print(f"cutover images: {exc}", markup=False, highlight=False, soft_wrap=True)
        return 2
    except ImagesError as exc:
        if isinstance(exc, CommandFailed):
            for line in exc.tail[-_TAIL:]:
                errors.print(f"  {line}", markup=False, highlight=False, style="dim",
                             soft_wrap=True)
        errors.print(f"cutover images: {exc}", markup=False, highlight=False, soft_wrap=True)
        return 1
    return 0
