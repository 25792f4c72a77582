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

from kubestream.errors import KubestreamError

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


class FunctionLoadError(KubestreamError):
    """A function's pickle cannot be loaded on this executor (usually: a module the driver
    imports is missing here)."""


class FunctionCache:
    """Executor side: hash -> function, unpickled on first use.

    Blobs are registered as tasks arrive, in launch order, and unpickled by the first
    task that uses them, so a task running before the one that carried its function
    still finds it. A blob that cannot be loaded fails every task that uses it with the
    loading error itself, not with a missing key.
    """

    def __init__(self) -> None:
        self._blobs: dict[FunctionRef, bytes] = {}
        self._loaded: dict[FunctionRef, Any] = {}
        self._failed: dict[FunctionRef, str] = {}
        self._lock = threading.Lock()

    def add(self, blobs: dict[FunctionRef, bytes]) -> None:
        """Register blobs (cheap: nothing is unpickled here)."""
        with self._lock:
            for ref, blob in blobs.items():
                if ref not in self._loaded and ref not in self._failed:
                    self._blobs.setdefault(ref, blob)

    def get(self, ref: FunctionRef) -> Any:
        """The function named `ref`.

        Raises
        ------
        FunctionLoadError
            Its pickle failed to load (now or for an earlier task), or it never arrived.
        """
        with self._lock:
            if ref in self._loaded:
                return self._loaded[ref]
            if ref in self._failed:
                raise FunctionLoadError(self._failed[ref])
            blob = self._blobs.pop(ref, None)
            if blob is None:
                raise FunctionLoadError(f"function {ref} was never sent to this executor")
            try:
                fn = pickle.loads(blob)
            except Exception as exc:
                self._failed[ref] = (
                    f"a function of the job cannot be loaded on this executor: "
                    f"{type(exc).__name__}: {exc}. A function defined in a module is pickled "
                    f"by reference to it: install that module on the executors (their image "
                    f"or PYTHONPATH), or define the function in the application's main file"
                )
                raise FunctionLoadError(self._failed[ref]) from exc
            self._loaded[ref] = fn
            return fn
