"""An independent storage role (data-storage), written from CONTRACT.md alone.

Settings (env): STORE_BIND_HOST, STORE_PORT, STORE_DIR, STORE_INFLUX, STORE_LOG_LEVEL,
STORE_INFLUX_DB, STORE_INFLUX_SHADOW_DB, STORE_UNREACHABLE_AFTER_S (5), STORE_STALLED_AFTER_S (10),
STORE_SHUTDOWN_FLUSH_S (8), STORE_DEDUP_WINDOW (100000).
Durable queue: SQLite WAL (synchronous=NORMAL) committed before any 2xx; dedup by
(database, entity_id, time_fired_ns) in the same transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple, TypeVar

import httpx
import uvicorn
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

T = TypeVar("T")
log = logging.getLogger("contract_storage")
SERVICE = "data-storage"
MEASUREMENT = "home_assistant_events"
MAX_BODY = 16 * 1024 * 1024
WRITE_BATCH = 5000


def _env(
    name: str, default: str, conv: Callable[[str], T], valid: Callable[[T], bool] = lambda _: True
) -> T:
    raw = os.environ.get(name, default)
    try:
        value = conv(raw)
        if not valid(value):
            raise ValueError("out of range")
    except (ValueError, TypeError) as exc:  # one stderr line naming the variable, exit 2
        print(f"{name}: invalid value {raw!r}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return value


class Settings:
    def __init__(self) -> None:
        def pos(v: float) -> bool:
            return v > 0

        self.host = _env("STORE_BIND_HOST", "127.0.0.1", str)
        self.port = _env("STORE_PORT", "8004", int, lambda p: 0 <= p <= 65535)
        self.data_dir = _env("STORE_DIR", "data/storage", str, bool)
        self.influx = _env(
            "STORE_INFLUX",
            "http://127.0.0.1:8086",
            lambda v: v.rstrip("/"),
            lambda v: v.startswith(("http://", "https://")),
        )
        self.prod_db = _env("STORE_INFLUX_DB", "home_assistant_events", str, lambda v: '"' not in v)
        self.shadow_db = _env(
            "STORE_INFLUX_SHADOW_DB", "home_assistant_events_shadow", str, lambda v: '"' not in v
        )
        self.log_level = _env(
            "STORE_LOG_LEVEL",
            "INFO",
            str.upper,
            lambda v: v in ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"),
        )
        self.unreachable_s = _env("STORE_UNREACHABLE_AFTER_S", "5", float, pos)
        self.stalled_s = _env("STORE_STALLED_AFTER_S", "10", float, pos)
        self.flush_s = _env("STORE_SHUTDOWN_FLUSH_S", "8", float, pos)
        self.dedup_window = _env("STORE_DEDUP_WINDOW", "100000", int, pos)


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    context_id: StrictStr = Field(min_length=26, max_length=26)
    event_type: Literal["state_changed"] = "state_changed"
    entity_id: StrictStr = Field(pattern=r"^[^\x00-\x1f]*[^\x00-\x1f\\]$")  # a valid tag value
    domain: StrictStr = Field(min_length=1)
    time_fired_ns: StrictInt = Field(ge=0, lt=2**63)
    state: StrictStr | None = None
    old_state: StrictStr | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    received_at_ns: StrictInt = Field(ge=-(2**63), lt=2**63)
    enriched_at_ns: StrictInt | None = Field(default=None, ge=-(2**63), lt=2**63)
    weather: dict[StrictStr, StrictInt | StrictFloat | StrictStr] | None = None
    weather_enriched: StrictBool = False
    flags: list[StrictStr] = Field(default_factory=list)
    target: Literal["production", "shadow"] = "production"

    @model_validator(mode="after")
    def _coherent(self) -> Event:
        if self.state is None and self.old_state is None:
            raise ValueError("state and old_state are both null")
        if self.domain != self.entity_id.split(".", 1)[0]:
            raise ValueError("domain is not the part of entity_id before the first '.'")
        for k, v in (self.weather or {}).items():
            if not k or "\n" in k or (isinstance(v, float) and v != v):
                raise ValueError(f"bad weather field {k!r}")
        return self


def _s(v: str) -> str:  # string field value
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _k(v: str) -> str:  # tag value / field key
    return v.replace(",", r"\,").replace("=", r"\=").replace(" ", r"\ ")


def head_of(ev: Event) -> str:
    """The point of CONTRACT.md section 6 up to (without) the stamps and the timestamp."""
    attrs = json.dumps(ev.attributes, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    fields = [
        f"context_id={_s(ev.context_id)}",
        f"state={_s(ev.state or '')}",
        f"old_state={_s(ev.old_state or '')}",
        f"attributes={_s(attrs)}",
        f"received_at={ev.received_at_ns}i",
    ]
    if ev.enriched_at_ns is not None:
        fields.append(f"enriched_at={ev.enriched_at_ns}i")
    for name, val in sorted((ev.weather or {}).items()):
        fields.append(
            f"weather_{_k(name)}=" + (_s(val) if isinstance(val, str) else repr(float(val)))
        )
    fields += [f"weather_enriched={'true' if ev.weather_enriched else 'false'}", 'writer="new"']
    return (
        f"{MEASUREMENT},domain={_k(ev.domain)},entity_id={_k(ev.entity_id)},"
        f"event_type={_k(ev.event_type)} " + ",".join(fields)
    )


def key_text(raw: Any) -> str | None:
    """`entity_id@YYYY-MM-DDTHH:MM:SS.ffffffZ` as far as readable."""
    ent = raw.get("entity_id") if isinstance(raw, dict) else None
    t = raw.get("time_fired_ns") if isinstance(raw, dict) else None
    if not isinstance(ent, str):
        return None
    try:
        if not isinstance(t, int) or isinstance(t, bool):
            return ent
        when = datetime.fromtimestamp(t // 10**9, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{ent}@{when}.{(t % 10**9) // 1000:06d}Z"
    except (ValueError, OverflowError, OSError):
        return ent


class Row(NamedTuple):
    id: int
    db: str
    seen_id: int
    entity_id: str
    t: int
    head: str


class Queue:
    """Blocking SQLite store; every call runs on Store's single DB thread, so calls are serial."""

    def __init__(self, path: str, window: int) -> None:
        self.window = window  # dedup window: the newest `window` keys are kept (durable)
        self.con = sqlite3.connect(path, check_same_thread=False)  # `with con:` = one transaction
        self.con.executescript(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
            "CREATE TABLE IF NOT EXISTS seen(id INTEGER PRIMARY KEY, db TEXT, entity_id TEXT,"
            " t INTEGER, written INTEGER NOT NULL DEFAULT 0, UNIQUE(db, entity_id, t));"
            "CREATE TABLE IF NOT EXISTS queue(id INTEGER PRIMARY KEY AUTOINCREMENT, db TEXT,"
            " seen_id INTEGER, entity_id TEXT, t INTEGER, head TEXT);"
            "CREATE TABLE IF NOT EXISTS dead(id INTEGER PRIMARY KEY, db TEXT, line TEXT,"
            " reason TEXT);"
        )

    def enqueue(self, items: list[tuple[str, str, int, str]]) -> int:
        """Queue the keys not seen yet, in one committed transaction; answer how many were new."""
        new = 0
        with self.con:
            for db, ent, t, head in items:
                cur = self.con.execute(
                    "INSERT OR IGNORE INTO seen(db, entity_id, t) VALUES (?,?,?)", (db, ent, t)
                )
                if cur.rowcount == 1:
                    self.con.execute(
                        "INSERT INTO queue(db, seen_id, entity_id, t, head) VALUES (?,?,?,?,?)",
                        (db, cur.lastrowid, ent, t, head),
                    )
                    new += 1
            self.con.execute(
                "DELETE FROM seen WHERE id <= (SELECT MAX(id) FROM seen) - ?", (self.window,)
            )
        return new

    def peek(self, n: int) -> list[Row]:
        rows = self.con.execute(
            "SELECT id, db, seen_id, entity_id, t, head FROM queue ORDER BY id LIMIT ?", (n,)
        ).fetchall()
        return [Row(*r) for r in rows]

    def done(self, rows: list[Row]) -> list[tuple[str, str, int]]:
        """Rows written (204): dequeue; answer the keys now written more than once."""
        with self.con:
            self.con.executemany("DELETE FROM queue WHERE id = ?", [(r.id,) for r in rows])
            return [
                (r.db, r.entity_id, r.t)
                for r in rows
                if (
                    self.con.execute(
                        "UPDATE seen SET written = written + 1 WHERE id = ? RETURNING written",
                        (r.seen_id,),
                    ).fetchone()
                    or (0,)
                )[0]
                > 1
            ]

    def dead_letter(self, row: Row, line: str, reason: str) -> None:
        with self.con:
            self.con.execute(
                "INSERT INTO dead(db, line, reason) VALUES (?,?,?)", (row.db, line, reason)
            )
            self.con.execute("DELETE FROM queue WHERE id = ?", (row.id,))

    def counts(self) -> tuple[int, int]:
        return (
            self.con.execute("SELECT COUNT(*) FROM queue").fetchone()[0],
            self.con.execute("SELECT COUNT(*) FROM dead").fetchone()[0],
        )


class Store:
    def __init__(self, cfg: Settings) -> None:
        self.cfg, self.pool = cfg, ThreadPoolExecutor(1, thread_name_prefix="sqlite")
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=2.0))
        self.wake = asyncio.Event()
        self.started = self.stopping = self.dbs_ready = False
        self.ping_fail_since: float | None = None
        self.write_fail_since: dict[str, float] = {}
        self.last_write_ok = self.nonempty_since = time.monotonic()
        self.received = self.processed = self.duplicates = self.rejected = self.depth = 0
        self.dead = self.write_failures = 0
        self.last_received_ns = self.last_processed_ns = 0
        self.rewrites: dict[str, dict[str, Any]] = {
            db: {"rewritten": 0, "first": []} for db in (cfg.prod_db, cfg.shadow_db)
        }
        self.tasks: list[asyncio.Task[None]] = []

    async def db(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def start(self) -> None:
        os.makedirs(self.cfg.data_dir, exist_ok=True)
        path = os.path.join(self.cfg.data_dir, "storage-queue.sqlite3")
        self.q = await self.db(Queue, path, self.cfg.dedup_window)
        self.depth, self.dead = await self.db(self.q.counts)
        await self.create_dbs()
        self.tasks = [asyncio.create_task(self.writer()), asyncio.create_task(self.monitor())]
        self.started = True

    async def stop(self) -> None:
        self.stopping = True
        self.wake.set()
        # flush what is held for a bounded time; the rest stays queued for the next start
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self.tasks[0]), self.cfg.flush_s)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.http.aclose()
        await self.db(self.q.con.close)
        self.pool.shutdown(wait=True)

    async def create_dbs(self) -> bool:
        ok = True
        for name in (self.cfg.prod_db, self.cfg.shadow_db):
            try:
                r = await self.http.post(
                    f"{self.cfg.influx}/query", data={"q": f'CREATE DATABASE "{name}"'}
                )
                ok = ok and r.status_code == 200 and '"error"' not in r.text
            except httpx.HTTPError:
                ok = False
        self.dbs_ready = self.dbs_ready or ok
        return ok

    async def monitor(self) -> None:
        while True:
            try:
                ok = (await self.http.get(f"{self.cfg.influx}/ping", timeout=1.0)).status_code < 300
            except httpx.HTTPError:
                ok = False
            if ok and (self.ping_fail_since is not None or not self.dbs_ready):
                await self.create_dbs()  # InfluxDB may come back empty
            if ok:
                self.ping_fail_since = None
            elif self.ping_fail_since is None:
                self.ping_fail_since = time.monotonic()
            await asyncio.sleep(0.5)

    async def writer(self) -> None:
        backoff = 0.05
        while True:
            self.wake.clear()
            rows = await self.db(self.q.peek, WRITE_BATCH)
            if not rows:
                if self.stopping:
                    return
                with suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), 1.0)
                continue
            # the oldest rows' database first, in queue order
            batch = rows[: next((i for i, r in enumerate(rows) if r.db != rows[0].db), len(rows))]
            try:
                ok = await self.write(rows[0].db, batch)
            except sqlite3.Error:
                log.exception("queue")
                ok = False
            if ok:
                backoff = 0.05
            else:
                await asyncio.sleep(random.uniform(0, backoff))  # full jitter, capped at 1 s
                backoff = min(backoff * 2, 1.0)

    async def write(self, db: str, rows: list[Row]) -> bool:
        """Write rows to InfluxDB; False = retryable failure (rows stay queued)."""
        stamp = time.time_ns()
        lines = [f"{r.head},stored_at={stamp}i,new_stored_at={stamp}i {r.t}" for r in rows]
        try:
            resp = await self.http.post(
                f"{self.cfg.influx}/write",
                params={"db": db, "precision": "ns"},
                content="\n".join(lines).encode(),
            )
        except httpx.HTTPError as exc:
            return self._failed(db, f"{type(exc).__name__}: {exc}")
        if resp.status_code == 204:
            again = await self.db(self.q.done, rows)
            now = time.monotonic()
            self.write_fail_since.pop(db, None)
            self.last_write_ok, self.depth = now, self.depth - len(rows)
            self.processed, self.last_processed_ns = self.processed + len(rows), time.time_ns()
            for d, ent, t in again:
                rw = self.rewrites.setdefault(d, {"rewritten": 0, "first": []})
                rw["rewritten"] += 1
                if len(rw["first"]) < 20:
                    rw["first"].append([ent, t])
            return True
        if resp.status_code == 404 and "database not found" in resp.text:
            await self.create_dbs()
            return self._failed(db, "database not found")
        if resp.status_code in (400, 413):  # refused: find the bad line(s) and dead-letter them
            if len(rows) > 1:
                half = len(rows) // 2
                return await self.write(db, rows[:half]) and await self.write(db, rows[half:])
            why = f"influx {resp.status_code}: {resp.text[:300]}"
            await self.db(self.q.dead_letter, rows[0], lines[0], why)
            log.warning("dead-lettered %s@%d: %s", rows[0].entity_id, rows[0].t, why)
            self.dead, self.depth, self.processed = (
                self.dead + 1,
                self.depth - 1,
                self.processed + 1,
            )
            return True
        return self._failed(db, f"HTTP {resp.status_code}: {resp.text[:200]}")

    def _failed(self, db: str, why: str) -> bool:
        self.write_failures += 1
        self.write_fail_since.setdefault(db, time.monotonic())
        log.debug("write to %s failed: %s", db, why)
        return False

    def health(self) -> tuple[bool, str | None]:
        now, lim = time.monotonic(), self.cfg.unreachable_s
        if not self.started or self.stopping:
            return False, "starting" if not self.started else "shutting_down"
        if not self.dbs_ready:
            return False, "influxdb_unreachable: databases not created yet"
        if self.ping_fail_since is not None and now - self.ping_fail_since > lim:
            return (
                False,
                f"influxdb_unreachable: no /ping answer for {now - self.ping_fail_since:.1f}s",
            )
        for db, since in self.write_fail_since.items():
            if now - since > lim:
                return (
                    False,
                    f"influx_write_failing: every write to {db} failing for {now - since:.1f}s",
                )
        idle = now - max(self.last_write_ok, self.nonempty_since)
        if self.depth > 0 and idle > self.cfg.stalled_s:
            return False, f"stalled: {self.depth} queued, no successful write for {idle:.1f}s"
        return True, None


def err(status: int, error: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status)


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def build_app(store: Store) -> Starlette:
    async def health(_: Request) -> Response:
        ok, reason = store.health()
        body = {
            "service": SERVICE,
            "status": "ok" if ok else "unhealthy",
            "healthy": ok,
            "reason": reason,
            "details": {
                "queue_depth": store.depth,
                "influx_databases_ready": store.dbs_ready,
                "dead_letters": store.dead,
            },
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    async def stats(_: Request) -> Response:
        if not store.started or store.stopping:
            return err(503, "unavailable", "storage is starting or stopping")
        return JSONResponse(
            {
                "service": SERVICE,
                "received": store.received,
                "processed": store.processed,
                "skipped": {"duplicate": store.duplicates, "rejected": store.rejected},
                "queue_depth": max(0, store.depth),
                "dead_letters": store.dead,
                "rewrites": store.rewrites,
                "last_received_ns": store.last_received_ns,
                "last_processed_ns": store.last_processed_ns,
            }
        )

    async def post_events(request: Request) -> Response:
        if not store.started or store.stopping:
            return err(503, "unavailable", "storage is starting or stopping; retry later")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return err(413, "too_large", f"the body exceeds {MAX_BODY} bytes")
        try:
            doc = json.loads(bytes(body).decode("utf-8"), parse_constant=_no_constant)
        except UnicodeDecodeError:
            return err(400, "not_utf8", "the body is not UTF-8")
        except ValueError as exc:
            return err(400, "not_json", f"the body is not JSON: {exc}")
        if not isinstance(doc, dict) or not isinstance(doc.get("events"), list):
            return err(422, "not_a_batch", 'the body must be an object {"events": [Event, ...]}')
        if set(doc) != {"events"}:
            return err(
                422, "unknown_field", f"unknown top-level fields: {sorted(set(doc) - {'events'})}"
            )
        rejected: list[dict[str, Any]] = []
        items: list[tuple[str, str, int, str]] = []
        for i, raw in enumerate(doc["events"]):
            try:
                ev = Event.model_validate(raw)
            except ValidationError as exc:
                e = exc.errors()[0]
                where = ".".join(str(p) for p in e["loc"]) or "event"
                rejected.append(
                    {"index": i, "event": key_text(raw), "reason": f"{where}: {e['msg']}"}
                )
                continue
            db = store.cfg.shadow_db if ev.target == "shadow" else store.cfg.prod_db
            items.append((db, ev.entity_id, ev.time_fired_ns, head_of(ev)))
        try:
            new = await store.db(store.q.enqueue, items) if items else 0
        except sqlite3.Error as exc:
            log.error("durable queue write failed: %s", exc)
            return err(
                503, "outbox_unavailable", "events could not be made durable; nothing accepted"
            )
        if new and store.depth == 0:
            store.nonempty_since = time.monotonic()
        store.depth += new
        store.received, store.last_received_ns = store.received + len(doc["events"]), time.time_ns()
        store.duplicates, store.rejected = (
            store.duplicates + len(items) - new,
            store.rejected + len(rejected),
        )
        store.wake.set()
        return JSONResponse(
            {"accepted": len(items), "rejected": rejected, "duplicates": len(items) - new}
        )

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await store.start()
        log.info(
            "storage ready on %s:%d, influx %s", store.cfg.host, store.cfg.port, store.cfg.influx
        )
        yield
        await store.stop()
        log.info("storage stopped, %d events still queued", store.depth)

    return Starlette(
        lifespan=lifespan,
        routes=[
            Route("/health", health),
            Route("/api/v1/stats", stats),
            Route("/api/v1/events", post_events, methods=["POST"]),
        ],
    )


def main() -> None:
    cfg = Settings()
    logging.basicConfig(
        level=cfg.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s contract_storage %(message)s",
    )
    config = uvicorn.Config(
        build_app(Store(cfg)),
        host=cfg.host,
        port=cfg.port,
        access_log=False,
        log_level=cfg.log_level.lower(),
        timeout_graceful_shutdown=5,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    server.run()  # SIGTERM: stop accepting, finish in-flight requests, then the lifespan flush
    if not server.started:
        sys.exit(1)


if __name__ == "__main__":
    main()
