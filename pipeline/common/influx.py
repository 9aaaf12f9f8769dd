"""Writing to InfluxDB: one writer contract, two servers, and the batching write path.

- `InfluxWriter` is the contract: ``write(lines)`` returns only when InfluxDB accepted every
  line (HTTP 204), else raises `WriteError` saying whether the same batch may succeed later
  (``retryable``: server down, 5xx, timeout, missing database, credentials) or never will
  (``retryable=False``: InfluxDB refused some of its points, e.g. a field type conflict).
- `InfluxV1Writer` speaks the 1.x HTTP API (``/write``, ``/query``, ``/ping``) with httpx;
  `InfluxV2Writer` goes through influxdb-client's ``InfluxDBClientAsync``.
- `BatchWriter` is what every service writes through: lines go into a `DurableQueue` first,
  a background task writes them in batches and acks them only after InfluxDB's 204, retrying
  what is retryable forever (with backoff) and isolating refused lines into the dead-letter
  table by bisection. Nothing is dropped silently (FAILURE_MODES.md #3, #7).

Why bisection: InfluxDB 1.x answers a batch with bad points by writing the good ones and
returning 400 "partial write", but it does not say which lines were refused, and a line with an
unbalanced quote makes it swallow every following line while reporting ``dropped=0``. Re-writing
halves is safe because a point is keyed by measurement, tags and time: writing it again
overwrites it with the same values.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

import httpx
import orjson

from pipeline.common.aio import wait_set, within
from pipeline.common.durable_queue import DurableQueue

__all__ = [
    "BatchWriter",
    "InfluxError",
    "InfluxV1Writer",
    "InfluxV2Writer",
    "InfluxWriter",
    "WriteError",
    "is_retryable_status",
]

log = logging.getLogger(__name__)

_DROPPED = re.compile(r"\bdropped=(\d+)\s*$")
_UNPARSABLE = re.compile(r"unable to parse '(.*?)': ", re.S)


class InfluxError(Exception):
    """InfluxDB answered with an error (or not at all)."""


class WriteError(InfluxError):
    """A write that did not fully succeed.

    ``retryable``: the same batch may succeed later, so keep it. Otherwise InfluxDB refused
    points of this batch for good; after a "partial write" the points it did accept are
    stored. ``dropped`` is InfluxDB's count of refused points (parse failures are not counted
    by 1.x), ``unparsable`` the lines it quoted as unparsable (best effort, from the message).
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        dropped: int | None = None,
        unparsable: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status = status
        self.dropped = dropped
        self.unparsable = list(unparsable)

    @property
    def partial(self) -> bool:
        return self.message.startswith("partial write")

    @classmethod
    def from_response(cls, status: int, message: str) -> WriteError:
        dropped = _DROPPED.search(message)
        return cls(
            message,
            retryable=is_retryable_status(status),
            status=status,
            dropped=int(dropped.group(1)) if dropped else None,
            unparsable=_UNPARSABLE.findall(message),
        )

    def __repr__(self) -> str:
        return f"WriteError({self.message!r}, retryable={self.retryable}, status={self.status})"


def is_retryable_status(status: int) -> bool:
    """Whether a batch answered with ``status`` should be kept and sent again as it is.

    Retryable are the answers that say nothing about the points: 5xx, 408 and 429 (server
    trouble), 401/403 (credentials) and 404 (database not found), which an operator fixes
    while the queue holds the data. Dead-lettering a whole backlog because a database was
    missing would turn an ops mistake into data loss. Other 4xx refuse the points themselves.
    """
    return status >= 500 or status in (401, 403, 404, 408, 429)


@runtime_checkable
class InfluxWriter(Protocol):
    async def write(self, lines: Sequence[str]) -> None:
        """Return when InfluxDB accepted every line; else raise `WriteError`."""
        ...

    async def ping(self) -> bool: ...

    async def aclose(self) -> None: ...


# --------------------------------------------------------------------------- InfluxDB 1.x


def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _server_message(response: httpx.Response) -> str:
    try:
        body = orjson.loads(response.content)
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            return body["error"]
    except orjson.JSONDecodeError:
        pass
    return response.text.strip() or f"HTTP {response.status_code}"


class InfluxV1Writer:
    """InfluxDB 1.x: ``POST /write?db=...&precision=ns`` with line protocol."""

    def __init__(
        self,
        url: str,
        database: str,
        *,
        username: str | None = None,
        password: str | None = None,
        retention_policy: str | None = None,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self._params = {"db": database, "precision": "ns"}
        if retention_policy:
            self._params["rp"] = retention_policy
        self._auth = httpx.BasicAuth(username, password or "") if username else None
        self._timeout = httpx.Timeout(timeout)
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=self._timeout)

    async def write(self, lines: Sequence[str]) -> None:
        if not lines:
            return
        body = "\n".join(lines).encode()
        try:
            response = await self._client.post(
                f"{self.url}/write", params=self._params, content=body, auth=self._auth or httpx.USE_CLIENT_DEFAULT,
                timeout=self._timeout,
            )
        except httpx.RequestError as exc:
            # Includes read timeouts after the server may have stored the batch: retrying
            # rewrites the same points, which is harmless.
            raise WriteError(f"{type(exc).__name__}: {exc or 'no detail'}", retryable=True) from exc
        if response.status_code == 204:
            return
        if response.is_success:
            # Only InfluxDB's 204 means "stored". A 200 comes from 1.x for an empty body, or
            # from something that is not InfluxDB at all (a proxy, a wrong port): never an ack.
            raise WriteError(
                f"unexpected {response.status_code} from {self.url}/write (expected 204): "
                f"{_server_message(response)[:200]}",
                retryable=True,
                status=response.status_code,
            )
        raise WriteError.from_response(response.status_code, _server_message(response))

    async def ping(self) -> bool:
        try:
            response = await self._client.get(f"{self.url}/ping", timeout=self._timeout)
        except httpx.RequestError:
            return False
        return response.status_code == 204

    async def query(self, q: str, *, database: str | None = None) -> list[dict[str, Any]]:
        """Run InfluxQL; the ``results`` list. Raises `InfluxError` on any statement error."""
        params = {"epoch": "ns"}
        if database:
            params["db"] = database
        try:
            response = await self._client.post(
                f"{self.url}/query", params=params, data={"q": q}, auth=self._auth or httpx.USE_CLIENT_DEFAULT,
                timeout=self._timeout,
            )
        except httpx.RequestError as exc:
            raise InfluxError(f"{type(exc).__name__}: {exc}") from exc
        if not response.is_success:
            raise InfluxError(_server_message(response))
        results: list[dict[str, Any]] = orjson.loads(response.content).get("results", [])
        for result in results:
            if "error" in result:
                raise InfluxError(f"{q!r}: {result['error']}")
        return results

    async def ensure_database(self) -> None:
        """``CREATE DATABASE`` (a no-op when it exists)."""
        await self.query(f"CREATE DATABASE {quote_ident(self.database)}")

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


# --------------------------------------------------------------------------- InfluxDB 2.x


class InfluxV2Writer:
    """InfluxDB 2.x through influxdb-client's ``InfluxDBClientAsync`` (which needs aiohttp).

    A missing aiohttp fails here, at service start, not at the first write. The client itself
    is made on first use because it must be created inside a running event loop.
    """

    def __init__(self, url: str, token: str, org: str, bucket: str, *, timeout: float = 10.0) -> None:
        try:
            import aiohttp
        except ImportError as exc:
            raise RuntimeError(
                "InfluxV2Writer needs aiohttp, which influxdb-client's async API uses: "
                "pip install 'influxdb-client[async]'"
            ) from exc
        self.url = url
        self.org = org
        self.bucket = bucket
        self._token = token
        self._timeout_ms = int(timeout * 1000)
        self._client: Any = None
        self._write_api: Any = None
        self._transport_errors: tuple[type[BaseException], ...] = (OSError, asyncio.TimeoutError, aiohttp.ClientError)

    def _connect(self) -> Any:
        if self._client is None:
            from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync

            self._client = InfluxDBClientAsync(url=self.url, token=self._token, org=self.org, timeout=self._timeout_ms)
            self._write_api = self._client.write_api()
        return self._client

    async def write(self, lines: Sequence[str]) -> None:
        if not lines:
            return
        from influxdb_client import WritePrecision
        from influxdb_client.rest import ApiException

        self._connect()
        try:
            await self._write_api.write(
                bucket=self.bucket, org=self.org, record="\n".join(lines), write_precision=WritePrecision.NS
            )
        except ApiException as exc:
            status = int(exc.status or 0)
            message = getattr(exc, "message", None) or str(exc.body or exc.reason or exc)
            raise WriteError.from_response(status, message) if status else WriteError(message, retryable=True) from exc
        except self._transport_errors as exc:
            raise WriteError(f"{type(exc).__name__}: {exc}", retryable=True) from exc

    async def ping(self) -> bool:
        try:
            return bool(await self._connect().ping())
        except Exception:  # ping answers a question; it never raises
            return False

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


# --------------------------------------------------------------------------- the write path


def _backoff(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full jitter: uniform(0, min(cap, base * 2**attempt)), so writers restarted together spread out."""
    return rng.uniform(0.0, min(cap, base * 2 ** min(attempt, 32)))


class BatchWriter:
    """Durable, batching, retrying writer: ``submit`` lines, they reach InfluxDB or a dead letter.

    Lines are stored in the `DurableQueue` before `submit` returns, so a crash loses nothing;
    a line leaves the queue only when InfluxDB answered 204 for a batch holding it, or when
    InfluxDB refused that very line (then it is in the dead-letter table, with the reason).
    Counters are plain attributes for the metrics endpoint. ``on_written``, if given, is called
    with the lines of each batch InfluxDB accepted (after the 204), e.g. to observe latency.
    """

    def __init__(
        self,
        writer: InfluxWriter,
        queue: DurableQueue,
        *,
        max_batch: int = 5000,
        flush_interval: float = 0.1,
        backoff_base: float = 0.05,
        backoff_cap: float = 5.0,
        close_writer: bool = True,
        close_queue: bool = True,
        rng: random.Random | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
        on_written: Callable[[list[str]], None] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self.writer = writer
        self.queue = queue
        self.max_batch = max_batch
        self.flush_interval = flush_interval
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._close_writer = close_writer
        self._close_queue = close_queue
        self._rng = rng or random.Random()
        self._clock_ns = clock_ns
        self.on_written = on_written

        # Counters (monotonic over this object's life) and gauges, for metrics.
        self.points_written = 0
        self.batches_written = 0
        self.write_errors = 0  # failed write requests, retryable or not
        self.retries = 0
        self.dead_lettered = 0
        self.last_write_ok_ns: int | None = None
        self.last_error: str | None = None

        self._task: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        self._changed = asyncio.Condition()
        self._flush_waiters = 0
        self._batch_started = 0.0
        self._closing = False
        self._closed = False

    @classmethod
    async def open(cls, writer: InfluxWriter, queue_path: str | Path, **kwargs: Any) -> BatchWriter:
        """Open (or reopen, replaying what it holds) the queue at ``queue_path`` and start."""
        queue = await DurableQueue.open(queue_path)
        batch_writer = cls(writer, queue, **kwargs)
        batch_writer.start()
        return batch_writer

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="influx-batch-writer")
            if self.queue.depth:
                self._wakeup.set()  # a reopened queue replays at once

    @property
    def depth(self) -> int:
        """Lines accepted by `submit` and not yet written (or dead-lettered)."""
        return self.queue.depth

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def submit(self, lines: Sequence[str]) -> None:
        """Store lines durably; they are written in the background. Returns once stored."""
        if self._closing:
            raise RuntimeError("BatchWriter is closed")
        if not lines:
            return
        try:
            await self.queue.put_many([line.encode() for line in lines])
        finally:
            self._wakeup.set()

    async def flush(self, timeout: float | None = None) -> bool:
        """Write what is queued now, without waiting for the interval; True once the queue is empty."""
        self._flush_waiters += 1
        self._wakeup.set()
        try:
            async with self._changed:
                await within(self._changed.wait_for(lambda: self.queue.depth == 0), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self._flush_waiters -= 1

    async def aclose(self, timeout: float = 10.0) -> None:
        """Graceful shutdown: write what is queued (up to ``timeout``), then close.

        Whatever InfluxDB did not accept by then stays in the durable queue and is written
        after the next start.
        """
        if self._closed:
            return
        self._closed = self._closing = True
        self._wakeup.set()
        if self._task is not None:
            try:
                await within(asyncio.shield(self._task), timeout)
            except TimeoutError:
                log.warning(
                    "closing with lines still queued; they are written after the next start",
                    extra={"depth": self.queue.depth, "last_error": self.last_error},
                )
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
        if self._close_queue:
            await self.queue.close()
        if self._close_writer:
            await self.writer.aclose()

    async def __aenter__(self) -> BatchWriter:
        self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ background task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            try:
                if self.queue.depth == 0:
                    await self._notify()
                    if self._closing:
                        return
                    self._wakeup.clear()
                    if self.queue.depth == 0:
                        await self._wakeup.wait()
                        self._batch_started = loop.time()
                    continue
                await self._gather(loop)
                self._batch_started = loop.time()
                rows = await self.queue.peek(self.max_batch)
                if rows:
                    await self._deliver(rows)
                await self._notify()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # e.g. the queue's disk: never let the writer die silently
                failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("batch writer loop failed; retrying")
                await asyncio.sleep(_backoff(failures, self.backoff_base, self.backoff_cap, self._rng))

    async def _gather(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait until a full batch is queued or ``flush_interval`` has passed since the first."""
        deadline = self._batch_started + self.flush_interval
        while self.queue.depth < self.max_batch and not self._closing and not self._flush_waiters:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._wakeup.clear()
            if not await wait_set(self._wakeup, remaining):
                return

    async def _deliver(self, rows: list[tuple[int, bytes]]) -> None:
        try:
            await self._write(rows)
        except WriteError as exc:
            await self._isolate(rows, exc)
            return
        # peek returns the oldest items and only this task acks, so every seq up to the
        # last one of the batch is in it: a cumulative ack is exact.
        await self.queue.ack(rows[-1][0])
        self._count_written(rows)

    async def _write(self, rows: list[tuple[int, bytes]]) -> None:
        """Write until InfluxDB answers 204; raise only a non-retryable `WriteError`."""
        lines = [item.decode() for _, item in rows]
        attempt = 0
        while True:
            try:
                await self.writer.write(lines)
                return
            except WriteError as exc:
                self.write_errors += 1
                self.last_error = exc.message
                if not exc.retryable:
                    raise
                self.retries += 1
                log.warning(
                    "InfluxDB write failed; retrying",
                    extra={"error": exc.message, "status": exc.status, "lines": len(lines), "attempt": attempt},
                )
                await asyncio.sleep(_backoff(attempt, self.backoff_base, self.backoff_cap, self._rng))
                attempt += 1

    async def _isolate(self, rows: list[tuple[int, bytes]], error: WriteError) -> None:
        """Find the lines InfluxDB refuses: write halves, recurse into refused halves."""
        if len(rows) == 1 or (error.dropped is not None and error.dropped >= len(rows)):
            # One line, or InfluxDB says it refused every point: these are the bad ones.
            await self.queue.dead_letter((seq for seq, _ in rows), error.message)
            self.dead_lettered += len(rows)
            log.error(
                "InfluxDB refused lines; dead-lettered",
                extra={"lines": len(rows), "first_seq": rows[0][0], "reason": error.message},
            )
            return
        middle = len(rows) // 2
        for half in (rows[:middle], rows[middle:]):
            try:
                await self._write(half)
            except WriteError as exc:
                await self._isolate(half, exc)
                continue
            await self.queue.ack(seq for seq, _ in half)
            self._count_written(half)

    def _count_written(self, rows: list[tuple[int, bytes]]) -> None:
        self.points_written += len(rows)
        self.batches_written += 1
        self.last_write_ok_ns = self._clock_ns()
        if self.on_written is not None:
            try:
                self.on_written([item.decode() for _, item in rows])
            except Exception:  # an observer's bug must not stop (or replay) the write path
                log.exception("on_written callback failed")

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()
