"""A durable FIFO of byte items on SQLite, with a dead-letter table beside it.

What the pipeline needs from it (DESIGN.md: "a service that cannot forward keeps the events in
a durable local queue (it survives a crash of the service) and replays them in order"):

- `put_many` returns only after the items are committed: once it returns they survive a
  SIGKILL of the process. WAL with ``synchronous=NORMAL`` gives exactly that (a commit is in
  the WAL file before the call returns); only a power loss or kernel crash can lose the last
  commits, and ``synchronous="FULL"`` closes that gap at the cost of an fsync per commit.
- `peek` never removes; `ack` removes. A consumer acks only after its downstream accepted the
  items, so a crash between the two replays them (at-least-once; downstream is idempotent).
- Sequence numbers only grow (``AUTOINCREMENT``), even after the queue was drained, so a late
  ``ack(seq)`` can never remove items that arrived after it was peeked.
- `put_many` can advance a named mark (an integer that only grows: websocket-ingestion keeps the
  time_fired of the newest event it made durable) in the same transaction as the items, so
  after a crash the mark says exactly what the queue was given, never more.
- and can add to named sets that only grow (``members``: the entity ids ingestion has seen, so
  that after a crash it still knows which entities to ask history about), likewise.
- `dead_letter` moves items to ``dead_letters`` with a reason in the same transaction as their
  removal: an item is in exactly one of the two tables, whatever moment the process dies.

aiosqlite runs every statement on its own thread, so nothing here blocks the event loop. An
`asyncio.Lock` makes each method one transaction: aiosqlite serialises statements, not
transactions, and a producer's INSERT must not be committed or rolled back by a consumer's ack.
It fits the ``Outbox`` protocol of `pipeline.common.outbox` (peek / ack(seq) / depth).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, TypeVar

import aiosqlite

__all__ = ["DeadLetter", "DurableQueue"]

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    item BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS marks (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
    name  TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (name, value)
);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq        INTEGER PRIMARY KEY,
    item       BLOB NOT NULL,
    reason     TEXT NOT NULL,
    dead_at_ns INTEGER NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    seq: int
    item: bytes
    reason: str
    dead_at_ns: int


class DurableQueue:
    """Open with ``await DurableQueue.open(path)``; close with `close` (or ``async with``)."""

    def __init__(self, db: aiosqlite.Connection, path: Path, depth: int, dead: int,
                 marks: dict[str, int] | None = None,
                 members: dict[str, set[str]] | None = None) -> None:
        self._db = db
        self.path = path
        self._depth = depth
        self._dead = dead
        self._marks = dict(marks or {})
        self._members = members or {}
        self._lock = asyncio.Lock()
        self._closed = False

    @classmethod
    async def open(cls, path: str | Path, *, synchronous: Synchronous = "NORMAL") -> DurableQueue:
        path = Path(path)
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        db = await aiosqlite.connect(path)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute(f"PRAGMA synchronous={synchronous}")
            # Another connection on the same file (a second process, a checker) waits, not fails.
            await db.execute("PRAGMA busy_timeout=5000")
            await db.executescript(_SCHEMA)
            await db.commit()
            depth = await _count(db, "queue")
            dead = await _count(db, "dead_letters")
            async with db.execute("SELECT name, value FROM marks") as cur:
                marks = {str(name): int(value) for name, value in await cur.fetchall()}
            members: dict[str, set[str]] = {}
            async with db.execute("SELECT name, value FROM members") as cur:
                for name, value in await cur.fetchall():
                    members.setdefault(str(name), set()).add(str(value))
        except BaseException:
            await db.close()
            raise
        return cls(db, path, depth, dead, marks, members)

    @property
    def depth(self) -> int:
        """Items put and not yet acked or dead-lettered (exact; counted once at open)."""
        return self._depth

    @property
    def dead_letter_count(self) -> int:
        """Items in the dead-letter table, over the life of the file."""
        return self._dead

    def mark(self, name: str) -> int | None:
        """A mark's durable value (None: never set)."""
        return self._marks.get(name)

    def members(self, name: str) -> frozenset[str]:
        """A named set's durable members."""
        return frozenset(self._members.get(name, ()))

    async def put_many(self, items: Sequence[bytes], *,
                       marks: Mapping[str, int] | None = None,
                       members: Mapping[str, Iterable[str]] | None = None) -> None:
        """Append items in order; they are durable when this returns. ``marks`` advance (never
        move back) and ``members`` join their sets, in the same transaction."""
        rows = [(bytes(i),) for i in items]
        grown = {name: value for name, value in (marks or {}).items()
                 if value > self._marks.get(name, value - 1)}
        joining = [(name, value) for name, values in (members or {}).items()
                   for value in values if value not in self._members.get(name, ())]
        if not rows and not grown and not joining:
            return

        async def tx() -> None:
            await self._db.executemany("INSERT INTO queue(item) VALUES (?)", rows)
            if grown:
                await self._db.executemany(
                    "INSERT INTO marks(name, value) VALUES (?, ?) ON CONFLICT(name) "
                    "DO UPDATE SET value = max(value, excluded.value)", list(grown.items()))
            if joining:
                await self._db.executemany(
                    "INSERT OR IGNORE INTO members(name, value) VALUES (?, ?)", joining)
            await self._db.commit()
            self._depth += len(rows)
            self._marks.update(grown)
            for name, value in joining:
                self._members.setdefault(name, set()).add(value)

        await self._transaction(tx)

    async def put(self, item: bytes) -> None:
        await self.put_many([item])

    async def peek(self, n: int) -> list[tuple[int, bytes]]:
        """Up to ``n`` oldest items as ``(seq, item)``, oldest first, without removing them."""
        if n <= 0:
            return []
        async with self._lock:
            self._check_open()
            async with self._db.execute(
                "SELECT seq, item FROM queue ORDER BY seq LIMIT ?", (n,)
            ) as cur:
                rows = await cur.fetchall()
        return [(int(seq), bytes(item)) for seq, item in rows]

    async def ack(self, up_to: int | Iterable[int]) -> int:
        """Remove every item with ``seq <= up_to`` (an int), or exactly the given seqs.

        Returns how many items were removed (acking twice is harmless)."""

        async def tx() -> int:
            if isinstance(up_to, int):
                cur = await self._db.execute("DELETE FROM queue WHERE seq <= ?", (up_to,))
            else:
                cur = await self._db.executemany(
                    "DELETE FROM queue WHERE seq = ?", [(s,) for s in up_to]
                )
            removed = max(cur.rowcount, 0)
            await self._db.commit()
            self._depth -= removed
            return removed

        return await self._transaction(tx)

    async def dead_letter(self, seqs: Iterable[int], reason: str) -> int:
        """Move the given items to the dead-letter table with ``reason``, atomically."""
        params = [(s,) for s in seqs]
        if not params:
            return 0
        now = time.time_ns()

        async def tx() -> int:
            cur = await self._db.executemany(
                "INSERT OR IGNORE INTO dead_letters(seq, item, reason, dead_at_ns) "
                "SELECT seq, item, ?, ? FROM queue WHERE seq = ?",
                [(reason, now, s) for (s,) in params],
            )
            moved = max(cur.rowcount, 0)
            cur = await self._db.executemany("DELETE FROM queue WHERE seq = ?", params)
            removed = max(cur.rowcount, 0)
            await self._db.commit()
            self._depth -= removed
            self._dead += moved
            return moved

        return await self._transaction(tx)

    async def park(self, items: list[tuple[int, bytes]], reason: str) -> bool:
        """A ``PoisonHandler`` for `pipeline.common.forwarder.Forwarder`: dead-letter and say so."""
        await self.dead_letter((seq for seq, _ in items), reason)
        return True

    async def dead_letters(self, limit: int = 1000) -> list[DeadLetter]:
        """The oldest dead letters, for inspection and replay."""
        async with self._lock:
            self._check_open()
            async with self._db.execute(
                "SELECT seq, item, reason, dead_at_ns FROM dead_letters ORDER BY seq LIMIT ?",
                (limit,),
            ) as cur:
                rows = await cur.fetchall()
        return [DeadLetter(int(s), bytes(i), str(r), int(t)) for s, i, r, t in rows]

    async def close(self) -> None:
        async with self._lock:
            if self._closed:
                return
            self._closed = True
            await self._db.close()

    async def __aenter__(self) -> DurableQueue:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"durable queue {self.path} is closed")

    async def _transaction(self, body: Callable[[], Awaitable[T]]) -> T:
        """Run ``body`` as one transaction, to completion even if the caller is cancelled.

        aiosqlite cannot interrupt a statement already handed to its thread: a cancelled caller
        would leave a commit happening behind its back and `depth` wrong. Shielding the whole
        transaction (counter update included) keeps the two in step; the cancelled caller just
        does not hear that its items were stored (at-least-once, as after a crash).
        """

        async def run() -> T:
            async with self._lock:
                self._check_open()
                try:
                    return await body()
                except BaseException:
                    # The original error matters more than a failed rollback.
                    with contextlib.suppress(Exception):
                        await self._db.rollback()
                    raise

        return await asyncio.shield(run())


_COUNTS = {"queue": "SELECT COUNT(*) FROM queue",
           "dead_letters": "SELECT COUNT(*) FROM dead_letters"}


async def _count(db: aiosqlite.Connection, table: Literal["queue", "dead_letters"]) -> int:
    async with db.execute(_COUNTS[table]) as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0
