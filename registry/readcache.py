"""Rendered bodies of the hot read (GET one agent), so that answering it costs no database trip.

Every commit through the registry's sessions clears the cache (`Database.after_commit`: API
requests, status watchers, `par up`'s status keeper), which makes it exact when one registry
process owns the database (SQLite). Entries also expire
after `ttl` seconds, which bounds how long another replica's change (PostgreSQL) may go unseen.
A read that raced a change is not stored: `put` only keeps a body computed in the same
generation in which its read started.
"""

from __future__ import annotations

import time


class ReadCache:
    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl, self.max_entries = ttl, max_entries
        self.generation = 0
        self._entries: dict[str, tuple[float, bytes]] = {}

    def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key: str, body: bytes, generation: int) -> None:
        if self.ttl <= 0 or generation != self.generation:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self.ttl, body)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()
