"""DurableQueue: order, acks, depth, concurrency, dead letters, and surviving SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipeline.common.durable_queue import DurableQueue

REPO = Path(__file__).resolve().parents[2]


def items(start: int, n: int, prefix: str = "item") -> list[bytes]:
    return [f"{prefix}-{i:08d}".encode() for i in range(start, start + n)]


async def test_peek_is_oldest_first_and_does_not_remove(tmp_path: Path) -> None:
    async with await DurableQueue.open(tmp_path / "q.db") as q:
        await q.put_many(items(0, 3))
        await q.put_many(items(3, 2))
        first = await q.peek(4)
        assert [item for _, item in first] == items(0, 4)
        assert [seq for seq, _ in first] == sorted(seq for seq, _ in first)
        assert await q.peek(4) == first
        assert q.depth == 5
        assert await q.peek(0) == []


async def test_ack_up_to_and_ack_exact_seqs(tmp_path: Path) -> None:
    async with await DurableQueue.open(tmp_path / "q.db") as q:
        await q.put_many(items(0, 10))
        rows = await q.peek(10)
        assert await q.ack(rows[2][0]) == 3  # cumulative: 0, 1, 2
        assert q.depth == 7
        assert await q.ack([rows[5][0], rows[7][0]]) == 2  # exactly these
        assert q.depth == 5
        assert [item for _, item in await q.peek(10)] == [items(0, 10)[i] for i in (3, 4, 6, 8, 9)]
        assert await q.ack(rows[2][0]) == 0  # acking twice is harmless
        assert q.depth == 5


async def test_depth_and_content_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    async with await DurableQueue.open(path) as q:
        await q.put_many(items(0, 100))
        await q.ack((await q.peek(30))[-1][0])
    async with await DurableQueue.open(path) as q:
        assert q.depth == 70
        assert [item for _, item in await q.peek(1000)] == items(30, 70)


async def test_sequence_numbers_never_go_back_after_draining(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    async with await DurableQueue.open(path) as q:
        await q.put_many(items(0, 5))
        last = (await q.peek(5))[-1][0]
        await q.ack(last)
        assert q.depth == 0
    async with await DurableQueue.open(path) as q:
        await q.put_many(items(5, 1))
        (seq, _), = await q.peek(1)
        # A stale ack(last) must never remove an item that arrived later.
        assert seq > last
        assert await q.ack(last) == 0 and q.depth == 1


async def test_concurrent_producers_and_a_consumer(tmp_path: Path) -> None:
    async with await DurableQueue.open(tmp_path / "q.db") as q:
        per_producer, batch = 60, 7

        async def produce(name: str) -> None:
            for b in range(per_producer):
                await q.put_many(items(b * batch, batch, name))
                if b % 3 == 0:
                    await asyncio.sleep(0)

        received: list[bytes] = []

        async def consume() -> None:
            use_list = False
            while len(received) < 2 * per_producer * batch:
                rows = await q.peek(13)
                if not rows:
                    await asyncio.sleep(0.001)
                    continue
                received.extend(item for _, item in rows)
                # Alternate both ack styles while puts are in flight.
                await q.ack([seq for seq, _ in rows] if use_list else rows[-1][0])
                use_list = not use_list

        await asyncio.wait_for(asyncio.gather(produce("a"), produce("b"), consume()), 30)
        for name in ("a", "b"):
            mine = [item for item in received if item.startswith(name.encode())]
            assert mine == items(0, per_producer * batch, name)  # each producer's order kept
        # Each put_many is atomic: a batch's items are never interleaved with another's.
        for start in range(0, len(received), batch):
            assert len({item[:1] for item in received[start : start + batch]}) == 1
        assert q.depth == 0
        assert await q.peek(1) == []


async def test_dead_letters_move_atomically_and_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    async with await DurableQueue.open(path) as q:
        await q.put_many(items(0, 5))
        rows = await q.peek(5)
        assert await q.dead_letter([rows[1][0], rows[3][0]], "field type conflict: state") == 2
        assert q.depth == 3 and q.dead_letter_count == 2
        assert [item for _, item in await q.peek(5)] == [items(0, 5)[i] for i in (0, 2, 4)]
        assert await q.park([rows[4]], "refused") is True  # the Forwarder's poison handler
    async with await DurableQueue.open(path) as q:
        assert (q.depth, q.dead_letter_count) == (2, 3)
        dead = await q.dead_letters()
        assert [(d.seq, d.item, d.reason) for d in dead] == [
            (rows[1][0], items(0, 5)[1], "field type conflict: state"),
            (rows[3][0], items(0, 5)[3], "field type conflict: state"),
            (rows[4][0], items(0, 5)[4], "refused"),
        ]
        assert all(d.dead_at_ns > 0 for d in dead)


async def test_a_put_cancelled_after_its_commit_still_counts(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    async with await DurableQueue.open(path) as q:
        real_commit = q._db.commit

        async def commit_then_linger() -> None:
            await real_commit()
            await asyncio.sleep(0.2)  # a slow disk: committed, but the caller not told yet

        q._db.commit = commit_then_linger  # type: ignore[method-assign]
        task = asyncio.create_task(q.put_many(items(0, 10)))
        await asyncio.sleep(0.05)
        task.cancel()  # the caller gives up while the commit is already done
        await asyncio.gather(task, return_exceptions=True)
        assert task.cancelled()
        await q.put_many(items(10, 1))  # queued behind the shielded transaction
        q._db.commit = real_commit  # type: ignore[method-assign]
        depth = q.depth
    async with await DurableQueue.open(path) as q:
        # The ten items are stored, so they must be counted: depth is exact, not drifting.
        assert q.depth == depth == 11
        assert [item for _, item in await q.peek(20)] == items(0, 11)


async def test_closed_queue_refuses_use(tmp_path: Path) -> None:
    q = await DurableQueue.open(tmp_path / "q.db")
    await q.close()
    await q.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        await q.put_many(items(0, 1))


_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from pipeline.common.durable_queue import DurableQueue

    async def main(path: str) -> None:
        q = await DurableQueue.open(path)
        n = 0
        while True:
            await q.put_many([f"item-{i:08d}".encode() for i in range(n, n + 50)])
            n += 50
            # Reported only after put_many returned: everything reported must survive.
            sys.stdout.write(f"{n}\\n")
            sys.stdout.flush()

    asyncio.run(main(sys.argv[1]))
    """
)


@pytest.mark.parametrize("kill_after", [500, 5_000])
def test_sigkill_after_put_loses_nothing(tmp_path: Path, kill_after: int) -> None:
    path = tmp_path / "q.db"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, env=env, cwd=REPO
    )
    assert proc.stdout is not None
    reported = 0
    try:
        for line in proc.stdout:
            reported = int(line)
            if reported >= kill_after:
                break
        # Killed while it keeps writing: most likely in the middle of a transaction.
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    assert reported >= kill_after

    async def reopen() -> list[tuple[int, bytes]]:
        async with await DurableQueue.open(path) as q:
            rows = await q.peek(10**9)
            assert q.depth == len(rows)
            return rows

    rows = asyncio.run(reopen())
    assert len(rows) >= reported
    # Every reported item, in order, no gaps, no duplicates (and at most whole later batches).
    assert [item for _, item in rows] == items(0, len(rows))
    assert len(rows) % 50 == 0
    assert [seq for seq, _ in rows] == sorted({seq for seq, _ in rows})
