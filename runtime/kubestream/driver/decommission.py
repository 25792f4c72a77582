"""Decommissioning an executor without losing a task or a block (Spark's decommissioning).

What an autoscaler does before it removes an executor: no new tasks, receivers
or replicas go to it; its receivers flush and start elsewhere; its running tasks
finish; every block it holds is copied to the others and found there; work
planned while it still held them finishes; then it is told to exit.
"""

from __future__ import annotations

import logging
import threading
import time

from kubestream.core.engine import Engine
from kubestream.core.protocol import Shutdown
from kubestream.errors import ConfigError
from kubestream.streaming.scheduler.receiver_tracker import ReceiverTracker

log = logging.getLogger(__name__)


class Decommissioner:
    def __init__(
        self, engine: Engine, receiver_tracker: ReceiverTracker, timeout: float = 120.0
    ) -> None:
        self._engine = engine
        self._receiver_tracker = receiver_tracker
        self.timeout = timeout
        self._lock = threading.Lock()
        self.outcomes: dict[str, str] = {}

    def start(self, executor_id: str) -> None:
        """Begin in the background; refuses an unknown executor or the last one."""
        engine = self._engine
        with self._lock:
            if executor_id not in engine.executor_ids():
                raise ConfigError(f"no executor {executor_id!r} is registered")
            if executor_id in engine.draining:
                return
            if len(set(engine.executor_ids()) - engine.draining) < 2:
                raise ConfigError(
                    f"executor {executor_id!r} is the last one; a job needs at least one"
                )
            engine.start_draining(executor_id)
            self.outcomes[executor_id] = "draining"
        threading.Thread(
            target=self._run, args=(executor_id,), name=f"decommission-{executor_id}", daemon=True
        ).start()

    def _run(self, executor_id: str) -> None:
        engine = self._engine
        deadline = time.monotonic() + self.timeout

        def left() -> float:
            return max(1.0, deadline - time.monotonic())

        try:
            self._receiver_tracker.move_receivers_off(executor_id, left())
            while engine.task_scheduler.running_on(executor_id) and time.monotonic() < deadline:
                time.sleep(0.02)
            result = engine.migrate_blocks(executor_id, left())
            if result.failed:
                log.warning(
                    "executor %s could not copy %d blocks; they will be recomputed or replayed",
                    executor_id,
                    len(result.failed),
                )
            if not engine.task_scheduler.wait_for_planned_work(left()):
                log.warning("executor %s: work planned before the copy still runs", executor_id)
        except (TimeoutError, KeyError) as exc:
            log.error("decommissioning executor %s failed: %s", executor_id, exc)
            self.outcomes[executor_id] = f"failed: {exc}"
            return
        engine.send(executor_id, Shutdown("decommissioned"))
        engine.detach_executor(executor_id, "decommissioned")
        self.outcomes[executor_id] = "decommissioned"
        log.warning("executor %s decommissioned: %d blocks moved", executor_id, len(result.moves))
