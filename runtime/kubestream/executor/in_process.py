"""In-process executors: the same ExecutorCore as executor processes, linked by direct calls.

For fast tests of operators and scheduling; `kubestream run` uses real processes.
"""

from __future__ import annotations

from kubestream.core.engine import Engine
from kubestream.core.tasks import ExecutorAddress
from kubestream.executor.core import ExecutorCore


class InProcessExecutors:
    def __init__(self, engine: Engine, count: int, cores: int = 1) -> None:
        self.engine = engine
        self.cores: dict[str, ExecutorCore] = {}
        for i in range(count):
            self.add(f"exec-{i + 1}", cores)

    def add(self, executor_id: str, cores: int = 1) -> ExecutorCore:
        def to_driver(message: object, eid: str = executor_id) -> None:
            self.engine.handle(eid, message)  # type: ignore[arg-type]

        core = ExecutorCore(executor_id, to_driver, self._fetch, self._put, cores)
        self.cores[executor_id] = core
        self.engine.attach_executor(
            ExecutorAddress(executor_id, f"inproc://{executor_id}"), cores, core.handle
        )
        return core

    def kill(self, executor_id: str) -> None:
        """Lose an executor the way a crash would: its blocks go and the driver is told."""
        core = self.cores.pop(executor_id)
        core.stop()
        self.engine.detach_executor(executor_id, "killed")

    def _fetch(self, location: ExecutorAddress, block_ids: list[str]) -> list[bytes | None]:
        core = self.cores.get(location.executor_id)
        if core is None:
            raise ConnectionError(f"executor {location.executor_id} is gone")
        return [core.serve_fetch(b) for b in block_ids]

    def _put(self, location: ExecutorAddress, block_id: str, blob: bytes) -> bool:
        core = self.cores.get(location.executor_id)
        if core is None:
            raise ConnectionError(f"executor {location.executor_id} is gone")
        return core.serve_put(block_id, blob)

    def stop(self) -> None:
        for core in self.cores.values():
            core.stop()
