"""User functions travel once: pickled with cloudpickle, named by the hash of the pickle.

The driver hands executors a function blob only the first time an executor needs
it; tasks carry just the hash. Executors keep loaded functions by hash.
"""

from __future__ import annotations

import hashlib
import pickle
import threading
from collections import OrderedDict
from typing import Any

import cloudpickle

FunctionRef = str


def dumps_function(fn: object) -> bytes:
    return bytes(cloudpickle.dumps(fn, protocol=pickle.HIGHEST_PROTOCOL))


class FunctionRegistry:
    """Driver side: object -> (hash, blob), memoised by identity (bounded LRU)."""

    def __init__(self, capacity: int = 4096) -> None:
        self._by_id: OrderedDict[int, tuple[object, FunctionRef]] = OrderedDict()
        self._blobs: dict[FunctionRef, bytes] = {}
        self._capacity = capacity
        self._lock = threading.Lock()

    def ref(self, fn: object) -> FunctionRef:
        with self._lock:
            hit = self._by_id.get(id(fn))
            if hit is not None and hit[0] is fn:
                self._by_id.move_to_end(id(fn))
                return hit[1]
        blob = dumps_function(fn)
        digest = hashlib.sha256(blob).hexdigest()[:32]
        with self._lock:
            self._by_id[id(fn)] = (fn, digest)
            self._blobs[digest] = blob
            while len(self._by_id) > self._capacity:
                _, (_, old) = self._by_id.popitem(last=False)
                if all(ref != old for _, ref in self._by_id.values()):
                    self._blobs.pop(old, None)
        return digest

    def blob(self, ref: FunctionRef) -> bytes:
        with self._lock:
            return self._blobs[ref]


class FunctionCache:
    """Executor side: hash -> loaded function."""

    def __init__(self) -> None:
        self._loaded: dict[FunctionRef, Any] = {}
        self._lock = threading.Lock()

    def add(self, blobs: dict[FunctionRef, bytes]) -> None:
        for ref, blob in blobs.items():
            with self._lock:
                if ref in self._loaded:
                    continue
            fn = pickle.loads(blob)
            with self._lock:
                self._loaded[ref] = fn

    def get(self, ref: FunctionRef) -> Any:
        with self._lock:
            return self._loaded[ref]

    def __contains__(self, ref: object) -> bool:
        with self._lock:
            return ref in self._loaded
