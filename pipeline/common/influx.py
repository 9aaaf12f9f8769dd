"""Writing to InfluxDB: the one writer contract every server's writer keeps.

`InfluxWriter` is the contract: ``write(lines)`` returns only when InfluxDB accepted every
line (HTTP 204), else raises `WriteError` saying whether the same batch may succeed later
(``retryable``: server down, 5xx, timeout, missing database, credentials) or never will
(``retryable=False``: InfluxDB refused some of its points, e.g. a field type conflict).

The writers: `pipeline.common.influx_v1.InfluxV1Writer` (the 1.x HTTP API) and
`pipeline.common.influx_v2.InfluxV2Writer` (influxdb-client's async API). What every service
writes through is `pipeline.common.batch_writer.BatchWriter`, durable and batching.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

__all__ = [
    "InfluxError",
    "InfluxWriter",
    "WriteError",
    "is_retryable_status",
]

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
    ``in_doubt``: the request went out and no answer came back (the server went away
    mid-request, a read timed out): InfluxDB may have stored the batch all the same.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        dropped: int | None = None,
        unparsable: Sequence[str] = (),
        in_doubt: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status = status
        self.dropped = dropped
        self.unparsable = list(unparsable)
        self.in_doubt = in_doubt

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
