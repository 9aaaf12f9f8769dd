"""The drain rule (harness/runner/drain.py): quiet only when nothing is queued anywhere and
nothing new was stored, three polls in a row; anything else starts the count again."""

from __future__ import annotations

from harness.runner.drain import QuietPolls


def feed(polls: list[tuple[int, int]]) -> list[bool]:
    quiet = QuietPolls()
    return [quiet.observe(depth, stored) for depth, stored in polls]


def test_quiet_after_three_still_polls_with_nothing_queued() -> None:
    assert feed([(0, 10), (0, 10), (0, 10), (0, 10)]) == [False, False, False, True]


def test_a_queue_still_holding_events_is_never_quiet() -> None:
    # A storage retrying its writes: nothing stored for a while, but it holds 40 events.
    assert not any(feed([(40, 10)] * 20))


def test_anything_stored_or_queued_starts_the_count_again() -> None:
    polls = [(0, 10), (0, 10), (0, 10), (0, 12), (0, 12), (3, 12), (0, 12), (0, 12), (0, 12)]
    assert feed(polls) == [False, False, False, False, False, False, False, False, True]
