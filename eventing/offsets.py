"""Trigger offsets: which may be committed, and committing them to the Trigger's group without joining it.

Each Trigger's offsets live in its Knative-named consumer group (`knative-trigger-{ns}-{name}`),
written with Kafka's "simple consumer" commit (generation -1, no member id): nothing joins the
group, so there is no session to keep alive, no heartbeat and no rebalance. Kafka and Tansu both
take these commits, and `kafka-consumer-groups --describe` shows the group's offsets as usual.
"""

from __future__ import annotations

import asyncio
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaClient
from aiokafka.client import CoordinationType
from aiokafka.errors import KafkaError, NotCoordinatorForGroupError, for_code
from aiokafka.protocol.commit import OffsetCommitRequest, OffsetFetchRequest

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

    def skip(self, partition: P, offset: int) -> None:
        """A record that needs no delivery (filtered out, not a CloudEvent): done at once."""
        self._next[partition] = max(self._next.get(partition, 0), offset + 1)

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


class GroupOffsets:
    """Reads and writes consumer-group offsets as a simple consumer (no group membership)."""

    def __init__(self, options: dict[str, Any], retry_for: float = 30.0) -> None:
        self.client = AIOKafkaClient(**options)
        self.retry_for = retry_for  # a fresh Kafka answers "coordinator not available" for a few seconds
        self._coordinators: dict[str, int] = {}

    async def start(self) -> None:
        await self.client.bootstrap()

    async def close(self) -> None:
        await self.client.close()

    async def committed(self, group: str, topic: str, partitions: list[int]) -> dict[int, int]:
        """The group's committed offsets for `partitions` (partitions with none are left out)."""
        response = await self._send(group, OffsetFetchRequest(group, [(topic, partitions)]))
        code = getattr(response, "error_code", 0)
        if code:
            raise for_code(code)()
        out = {}
        for _topic, parts in response.topics:
            for partition, offset, _metadata, error in parts:
                if error:
                    raise for_code(error)()
                if offset >= 0:
                    out[partition] = offset
        return out

    async def commit(self, group: str, topic: str, offsets: dict[int, int]) -> None:
        parts = [(partition, offset, "") for partition, offset in sorted(offsets.items())]
        request = OffsetCommitRequest(group, OffsetCommitRequest.DEFAULT_GENERATION_ID, "",
                                      OffsetCommitRequest.DEFAULT_RETENTION_TIME, [(topic, parts)])
        response = await self._send(group, request)
        for _topic, results in response.topics:
            for _partition, error in results:
                if error:
                    self._coordinators.pop(group, None)  # found again next time, if it moved
                    raise for_code(error)()

    async def _send(self, group: str, request: Any) -> Any:
        """Send to the group's coordinator, finding it (again) while Kafka says it moved or is starting."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_for
        while True:
            try:
                node = self._coordinators.get(group)
                if node is None:
                    node = self._coordinators[group] = await self.client.coordinator_lookup(
                        CoordinationType.GROUP, group)
                response = await self.client.send(node, request)
                code = getattr(response, "error_code", 0)
                if code and for_code(code).retriable:
                    raise for_code(code)()
                return response
            except KafkaError as exc:
                self._coordinators.pop(group, None)
                retriable = exc.retriable or isinstance(exc, NotCoordinatorForGroupError)
                if not retriable or loop.time() > deadline:
                    raise
                await asyncio.sleep(0.2)
