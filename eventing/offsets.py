"""Which offsets may be committed: only up to the first record still in flight, per partition."""

from __future__ import annotations

from typing import Generic, TypeVar

P = TypeVar("P")


class OffsetTracker(Generic[P]):
    """Records start in offset order per partition and finish in any order; commits stay contiguous."""

    def __init__(self) -> None:
        self._pending: dict[P, set[int]] = {}
        self._next: dict[P, int] = {}
        self._committed: dict[P, int] = {}

    def start(self, partition: P, offset: int) -> None:
        self._pending.setdefault(partition, set()).add(offset)
        self._next[partition] = max(self._next.get(partition, 0), offset + 1)

    def done(self, partition: P, offset: int) -> None:
        self._pending.get(partition, set()).discard(offset)

    def in_flight(self) -> int:
        return sum(len(p) for p in self._pending.values())

    def committable(self) -> dict[P, int]:
        """Offsets (next record to read) that advanced since the last `mark_committed`."""
        out: dict[P, int] = {}
        for partition, upto in self._next.items():
            pending = self._pending.get(partition)
            offset = min(pending) if pending else upto
            if offset > self._committed.get(partition, -1):
                out[partition] = offset
        return out

    def mark_committed(self, offsets: dict[P, int]) -> None:
        self._committed.update(offsets)

    def forget(self, partitions: set[P]) -> None:
        """Drop partitions this consumer no longer owns (after a rebalance)."""
        for partition in partitions:
            self._pending.pop(partition, None)
            self._next.pop(partition, None)
            self._committed.pop(partition, None)
