"""Object storage with one global resourceVersion counter and a bounded watch history."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from local.cluster.errors import ApiError
from local.cluster.resources import Resource

HISTORY = 2000
_T = TypeVar("_T")


def _clone(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clone(v) if isinstance(v, dict | list) else v for k, v in value.items()}
    if isinstance(value, list):
        return [_clone(v) if isinstance(v, dict | list) else v for v in value]
    return value


def clone(value: _T) -> _T:
    """A deep copy of a JSON-shaped value (several times faster than ``copy.deepcopy``)."""
    return cast(_T, _clone(value))


@dataclass(frozen=True)
class Change:
    """One watch event: what happened to which object, at which resourceVersion."""

    revision: int
    resource_key: str
    kind: str  # ADDED | MODIFIED | DELETED
    object: dict[str, Any]
    previous: dict[str, Any] | None = None  # the object before a MODIFIED change


class Store:
    """All objects, keyed by resource, namespace and name, like etcd's key space.

    Every write takes the next value of one counter (etcd's revision), so resourceVersions
    are comparable across kinds, and the last ``HISTORY`` changes are kept for watches that
    resume from a resourceVersion. ``lock`` guards everything, controllers included.
    """

    def __init__(self, history: int = HISTORY) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
        self._revision = 1
        self._history: deque[Change] = deque(maxlen=history)
        # The last recorded state of each object, so a MODIFIED change knows what it was.
        self._last: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.closed = False

    @property
    def revision(self) -> int:
        """The latest resourceVersion handed out."""
        return self._revision

    def oldest_watchable(self) -> int:
        """The oldest resourceVersion a watch may resume from."""
        if len(self._history) < (self._history.maxlen or 0):
            return 0
        return self._history[0].revision - 1

    def get(self, resource: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        """The stored object itself (callers copy before handing it out)."""
        return self._objects.get(resource.key, {}).get((namespace, name))

    def items(self, resource: Resource, namespace: str | None = None) -> list[dict[str, Any]]:
        """Stored objects of one resource, sorted by namespace then name like etcd keys."""
        bucket = self._objects.get(resource.key, {})
        keys = sorted(k for k in bucket if namespace is None or k[0] == namespace)
        return [bucket[k] for k in keys]

    def _next(self) -> str:
        self._revision += 1
        return str(self._revision)

    def _record(
        self,
        resource: Resource,
        kind: str,
        obj: dict[str, Any],
        previous: dict[str, Any] | None = None,
    ) -> None:
        self._history.append(Change(self._revision, resource.key, kind, clone(obj), previous))
        self.changed.notify_all()

    def put(self, resource: Resource, obj: dict[str, Any], *, new: bool) -> dict[str, Any]:
        """Store ``obj`` (owned by the store from now on) under a fresh resourceVersion."""
        meta = obj["metadata"]
        namespace = meta.get("namespace", "") if resource.namespaced else ""
        bucket = self._objects.setdefault(resource.key, {})
        before = None if new else self._last.get((resource.key, namespace, meta["name"]))
        meta["resourceVersion"] = self._next()
        bucket[(namespace, meta["name"])] = obj
        self._record(resource, "ADDED" if new else "MODIFIED", obj, before)
        self._last[(resource.key, namespace, meta["name"])] = self._history[-1].object
        return obj

    def remove(self, resource: Resource, namespace: str, name: str) -> dict[str, Any]:
        """Delete an object; its DELETED event carries the deletion's resourceVersion."""
        obj = self._objects.get(resource.key, {}).pop((namespace, name))
        self._last.pop((resource.key, namespace, name), None)
        obj["metadata"]["resourceVersion"] = self._next()
        self._record(resource, "DELETED", obj)
        return obj

    def changes_since(self, revision: int) -> Iterator[Change]:
        """Changes after ``revision``; 410 Expired when the history no longer reaches back."""
        if revision < self.oldest_watchable():
            raise ApiError(
                410,
                "Expired",
                f"too old resource version: {revision} ({self.oldest_watchable() + 1})",
            )
        for change in self._history:
            if change.revision > revision:
                yield change

    def wait(self, timeout: float) -> None:
        """Block (lock held) until a write happens or ``timeout`` real seconds pass."""
        self.changed.wait(timeout)

    def close(self) -> None:
        """Wake every watcher so streams end when the server stops."""
        with self.lock:
            self.closed = True
            self.changed.notify_all()
