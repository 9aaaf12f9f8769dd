"""Images sent to an engine that shares no registry with this machine.

``docker save`` on the engine that has an image, piped straight into ``docker load`` on the
run's engine: no registry, no file on disk. Tags and image ids survive the trip, so a
content-hash tag (``images.py``) names the same image on both engines and the next run finds
it there. The same path brings a pipeline file's own images, built by a team on its laptop,
to the bigger host its scenarios run on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Iterable
from dataclasses import dataclass, field

from harness.errors import CommandFailed, EngineUnavailable

from .engine import Docker
from .place import EnginePlace
from .progress import Reporter

__all__ = ["Shipment", "image_source", "send", "send_missing"]

log = logging.getLogger(__name__)

SEND_TIMEOUT_S = 900.0


@dataclass(slots=True)
class Shipment:
    sent: list[str] = field(default_factory=list)  # one line each: what went, and why
    there: list[str] = field(default_factory=list)  # already on the run's engine
    nowhere: list[str] = field(default_factory=list)  # on neither: the engine may pull them


async def image_source(place: EnginePlace) -> Docker | None:
    """The engine images are built on and sent from, when the run's engine is elsewhere and
    that one answers; None: build on the run's engine itself (its own context upload)."""
    if not place.elsewhere:
        return None
    source = Docker(host=place.image_source)
    try:
        await source.ensure_engine(timeout=10)
    except EngineUnavailable:
        return None
    return source


async def send(ref: str, source: Docker, target: Docker,
               timeout: float = SEND_TIMEOUT_S) -> None:
    """``docker save ref`` on ``source`` into ``docker load`` on ``target``, through a pipe."""
    read_end, write_end = os.pipe()
    try:
        save = await asyncio.create_subprocess_exec(
            *source.base, "save", ref, stdin=asyncio.subprocess.DEVNULL, stdout=write_end,
            stderr=asyncio.subprocess.PIPE)
        load = await asyncio.create_subprocess_exec(
            *target.base, "load", stdin=read_end, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
    finally:  # the children hold the ends now; load sees EOF when save exits
        os.close(read_end)
        os.close(write_end)
    try:
        (_, save_err), (load_out, _) = await asyncio.wait_for(
            asyncio.gather(save.communicate(), load.communicate()), timeout)
    except BaseException:  # a timeout or Ctrl-C: leave no half transfer running
        for proc in (save, load):
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        raise
    # The one that failed first: when save fails, load fails too, saying only that its input
    # ended; when load fails, save dies of SIGPIPE, saying nothing.
    order = [("save", save, save_err), ("load", load, load_out)]
    if save.returncode == -signal.SIGPIPE:
        order.reverse()
    for what, proc, out in order:
        if proc.returncode != 0:
            lines = [ln for ln in out.decode(errors="replace").splitlines() if ln.strip()]
            last = lines[-1] if lines else "no output"
            raise CommandFailed(f"sending {ref}: docker {what} failed (exit {proc.returncode}): "
                                f"{last}", lines)


async def send_missing(refs: Iterable[str], source: Docker, target: Docker,
                       reporter: Reporter, where: str) -> Shipment:
    """Each ref the run's engine lacks and ``source`` has, sent; the account says which."""
    shipment = Shipment()
    for ref in dict.fromkeys(refs):  # once each, in order
        if await target.image_id(ref) is not None:
            shipment.there.append(f"{ref} already on the engine at {where}")
        elif await source.image_id(ref) is not None:
            with reporter.step(f"sending {ref} to {where}"):
                await send(ref, source, target)
            shipment.sent.append(f"{ref} sent to the engine at {where} (docker save | docker "
                                 "load): it shares no registry with this machine")
        else:
            shipment.nowhere.append(f"{ref} is on neither engine: the one at {where} will try "
                                    "to pull it")
    return shipment


async def bring(refs: Iterable[str], place: EnginePlace) -> Shipment:
    """A pipeline file's own images onto the run's engine, when that engine is elsewhere."""
    source = await image_source(place)
    if source is None:
        return Shipment()
    shipment = await send_missing(refs, source, Docker(), Reporter(None), place.docker_host or "")
    for line in shipment.sent + shipment.nowhere:
        log.warning("%s", line)
    return shipment
