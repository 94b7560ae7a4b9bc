"""Values a process keeps for a few seconds (FOUNDRY_TENANT_ROUTE_TTL, as tenant routes), which
a change made in the process drops at once.

A read that began before the change must not store what it read after the change dropped the
entry: it would bring the old value back for the whole TTL in the very process that made the
change (a budget lowered, an override set, SSO disabled: each documented as seen there at once).
Each `forget` moves the cache's generation, and a read stores its value only if the generation
has not moved since it began (as tenant routing's shared cache does with its own counter).
"""

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from django.conf import settings

V = TypeVar("V")

MAX_ENTRIES = 10_000  # past it, the cache starts over (a process serving very many workspaces)


class RecentValues(Generic[V]):
    def __init__(self) -> None:
        self._entries: dict[Hashable, tuple[float, V]] = {}
        self._generation = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], V]) -> V:
        """The value kept for `key`, else `load()`'s, kept unless a forget came meanwhile."""
        now = time.monotonic()
        hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        generation = self._generation
        value = load()
        self.keep({key: value}, since=generation, now=now)
        return value

    def generation(self) -> int:
        return self._generation

    def keep(self, values: dict[Hashable, V], *, since: int, now: float | None = None) -> None:
        """Keep `values`, read from generation `since` on: not if a forget came since."""
        expires = (time.monotonic() if now is None else now) + settings.FOUNDRY_TENANT_ROUTE_TTL
        with self._lock:
            if self._generation != since:
                return
            if len(self._entries) + len(values) > MAX_ENTRIES:
                self._entries.clear()
            self._entries.update((key, (expires, value)) for key, value in values.items())

    def forget(self, match: Callable[[Hashable], bool] | None = None) -> None:
        """Drop the entries `match` says (every one without it); no read begun before stores."""
        with self._lock:
            self._generation += 1
            if match is None:
                self._entries.clear()
            else:
                for key in [key for key in self._entries if match(key)]:
                    del self._entries[key]
