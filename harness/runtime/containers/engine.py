"""The Docker engine, through the ``docker`` CLI run as asyncio subprocesses.

The CLI rather than the Python SDK: ``docker build`` and ``docker import`` stream their output
line by line, which is what the progress display shows, and the CLI picks up the user's
context and DOCKER_HOST exactly as a person typing the same command would.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import CommandFailed, EngineUnavailable

#: What to do when no engine answers; said once, in every message that needs it.
HOW_TO_GET_AN_ENGINE = ("install and start one: `apt-get install docker.io` then run `dockerd` "
                        "in the background (or `.ci/docker-engine`, which does both)")

LineSink = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Pulled:
    ok: bool
    detail: str  # what the pull said: "pulled", or why not (the daemon's error line)


@dataclass(frozen=True, slots=True)
class Result:
    returncode: int
    output: str  # stdout and stderr, interleaved as the command wrote them


async def run(argv: Sequence[str], *, timeout: float | None = None,
              on_line: LineSink | None = None, env: Mapping[str, str] | None = None,
              tail_lines: int = 40) -> Result:
    """Run ``argv``, feed each output line to ``on_line``, keep the last ``tail_lines``.

    On timeout the command is killed (it is ours: we started it) and the result says 124, as
    coreutils' timeout does.
    """
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env={**os.environ, **(env or {})})
    tail: deque[str] = deque(maxlen=tail_lines)

    async def pump() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            tail.append(line)
            if on_line is not None and line:
                on_line(line)
        await proc.wait()

    try:
        await asyncio.wait_for(pump(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return Result(124, "\n".join(tail))
    except BaseException:  # cancelled (Ctrl-C): leave no docker build running behind us
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    assert proc.returncode is not None
    return Result(proc.returncode, "\n".join(tail))


async def check(argv: Sequence[str], what: str, *, timeout: float | None = None,
                on_line: LineSink | None = None) -> Result:
    """``run`` that raises CommandFailed (with the output's tail) on a non-zero exit."""
    result = await run(argv, timeout=timeout, on_line=on_line)
    if result.returncode != 0:
        lines = [ln for ln in result.output.splitlines() if ln.strip()]
        last = lines[-1] if lines else "no output"
        why = "timed out" if result.returncode == 124 else f"exit {result.returncode}"
        raise CommandFailed(f"{what} failed ({why}): {last}", lines)
    return result


class Docker:
    """The few engine operations image building needs; tests replace it with a fake."""

    def __init__(self, cli: str = "docker", host: str | None = None) -> None:
        self.cli = cli
        self.host = host  # None: the engine the CLI finds (DOCKER_HOST, context, local socket)

    @property
    def base(self) -> list[str]:
        return [self.cli, "--host", self.host] if self.host else [self.cli]

    async def ensure_engine(self, timeout: float = 15.0) -> str:
        """The engine's version, or EngineUnavailable with a one-line message."""
        if shutil.which(self.cli) is None:
            raise EngineUnavailable(f"no `{self.cli}` command on PATH: {HOW_TO_GET_AN_ENGINE}")
        result = await run([*self.base, "info", "--format", "{{.ServerVersion}}"], timeout=timeout)
        version = result.output.strip().splitlines()[-1:] if result.output.strip() else []
        if result.returncode != 0 or not version or " " in version[0]:
            said = _first_error_line(result.output) or f"exit {result.returncode}"
            raise EngineUnavailable(f"no Docker engine answers ({said}): {HOW_TO_GET_AN_ENGINE}")
        return version[0]

    async def image_id(self, ref: str) -> str | None:
        """The local image's id, or None when the engine has no image by that name."""
        result = await run([*self.base, "image", "inspect", "--format", "{{.Id}}", ref],
                           timeout=30)
        return result.output.strip() if result.returncode == 0 else None

    async def pull(self, ref: str, *, answer_timeout: float, total_timeout: float = 900,
                   on_line: LineSink | None = None) -> Pulled:
        """Pull ``ref``; not ok when no registry answers within ``answer_timeout``.

        The short timeout applies only to the registry's first answer (the "Pulling from" line
        or an up-to-date digest): a registry that answers but serves a large image slowly is
        still a registry, and gets ``total_timeout`` to finish.
        """
        answered = asyncio.Event()

        def sink(line: str) -> None:
            if not line.lower().startswith(("error", "denied")):
                answered.set()
            if on_line is not None:
                on_line(line)

        task = asyncio.create_task(run([*self.base, "pull", ref], timeout=total_timeout,
                                       on_line=sink))
        waiter = asyncio.create_task(answered.wait())
        try:
            done, _ = await asyncio.wait({task, waiter}, timeout=answer_timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
            if not done:  # silence: a registry that may be there but does not answer in time
                return Pulled(False, f"no answer in {answer_timeout:g} s")
            result = await task
            if result.returncode == 0:
                return Pulled(True, "pulled")
            said = _first_error_line(result.output) or f"exit {result.returncode}"
            return Pulled(False, _short(said))
        finally:
            waiter.cancel()
            if not task.done():
                task.cancel()
            await asyncio.gather(task, waiter, return_exceptions=True)

    async def build(self, context: Path, dockerfile: Path, tag: str, *,
                    build_args: Mapping[str, str], labels: Mapping[str, str],
                    no_cache: bool = False, on_line: LineSink | None = None) -> None:
        # --force-rm: a failed step leaves no stopped container behind.
        argv = [*self.base, "build", "--force-rm", "--file", str(dockerfile), "--tag", tag]
        if no_cache:
            argv.append("--no-cache")
        for key, value in build_args.items():
            argv += ["--build-arg", f"{key}={value}"]
        for key, value in labels.items():
            argv += ["--label", f"{key}={value}"]
        await check([*argv, str(context)], f"docker build {tag}", on_line=on_line)

    async def import_rootfs(self, tarball: Path, tag: str, *, changes: Sequence[str],
                            on_line: LineSink | None = None) -> None:
        argv = [*self.base, "import"]
        for change in changes:
            argv += ["--change", change]
        await check([*argv, str(tarball), tag], f"docker import {tag}", on_line=on_line)


def _first_error_line(output: str) -> str:
    for line in output.splitlines():
        line = line.strip()
        if line and ("error" in line.lower() or "cannot" in line.lower()):
            return line.removeprefix("ERROR: ")
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def _short(error: str, limit: int = 90) -> str:
    """The daemon's error without its preamble: 'Error response from daemon: Get "...": dial
    tcp: lookup registry on ...: no such host' says what matters in its last two clauses."""
    error = error.removeprefix("Error response from daemon: ")
    if len(error) > limit:
        error = ": ".join(error.split(": ")[-2:])
    return error
