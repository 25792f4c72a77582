"""Where each shuffle's map outputs live; forgets an executor's outputs when it is lost."""

from __future__ import annotations

import threading

from kubestream.core.tasks import ExecutorAddress
from kubestream.errors import FetchFailedError


class MapOutputTracker:
    def __init__(self) -> None:
        self._outputs: dict[int, list[ExecutorAddress | None]] = {}
        self._lock = threading.Lock()

    def register_shuffle(self, shuffle_id: int, num_maps: int) -> None:
        with self._lock:
            self._outputs.setdefault(shuffle_id, [None] * num_maps)

    def register_output(self, shuffle_id: int, map_index: int, location: ExecutorAddress) -> None:
        with self._lock:
            self._outputs[shuffle_id][map_index] = location

    def missing(self, shuffle_id: int) -> list[int]:
        with self._lock:
            return [i for i, loc in enumerate(self._outputs[shuffle_id]) if loc is None]

    def locations(self, shuffle_id: int) -> tuple[ExecutorAddress, ...]:
        with self._lock:
            outputs = self._outputs[shuffle_id]
            located = tuple(loc for loc in outputs if loc is not None)
            if len(located) < len(outputs):
                lost = outputs.index(None)
                raise FetchFailedError(shuffle_id, lost, "", "map output lost with its executor")
            return located

    def unregister_output(self, shuffle_id: int, map_index: int, executor_id: str) -> None:
        with self._lock:
            outputs = self._outputs.get(shuffle_id)
            if outputs and outputs[map_index] and outputs[map_index].executor_id == executor_id:  # type: ignore[union-attr]
                outputs[map_index] = None

    def move_output(
        self, shuffle_id: int, map_index: int, executor_id: str, location: ExecutorAddress
    ) -> None:
        """A draining executor copied this map output to `location`."""
        with self._lock:
            outputs = self._outputs.get(shuffle_id)
            if outputs and outputs[map_index] and outputs[map_index].executor_id == executor_id:  # type: ignore[union-attr]
                outputs[map_index] = location

    def remove_executor(self, executor_id: str) -> None:
        with self._lock:
            for outputs in self._outputs.values():
                for i, loc in enumerate(outputs):
                    if loc is not None and loc.executor_id == executor_id:
                        outputs[i] = None

    def unregister_shuffles(self, shuffle_ids: list[int]) -> None:
        with self._lock:
            for shuffle_id in shuffle_ids:
                self._outputs.pop(shuffle_id, None)
