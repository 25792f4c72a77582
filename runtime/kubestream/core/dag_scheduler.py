"""Splits an RDD's lineage into stages at shuffle boundaries and runs them in order.

A stage whose tasks hit a fetch failure (an executor holding map output died)
recomputes the missing map outputs and tries again, a bounded number of times.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from kubestream.core.functions import FunctionRef, FunctionRegistry
from kubestream.core.map_output_tracker import MapOutputTracker
from kubestream.core.rdd import RDD, PersistedRDD, ShuffleDependency, walk_lineage
from kubestream.core.task_scheduler import PlannedTask, TaskSetOutcome
from kubestream.core.tasks import (
    ExecutorAddress,
    OutputSpec,
    ReadBack,
    ResultOutput,
    ShuffleWrite,
    TaskDescription,
    UpdatedAndRead,
    UpdateState,
)
from kubestream.errors import FetchFailedError, JobFailedError


class TaskRunner(Protocol):
    def run_taskset(self, tasks: Sequence[PlannedTask]) -> TaskSetOutcome: ...

    def executors(self) -> dict[str, ExecutorAddress]: ...


class DAGScheduler:
    def __init__(
        self,
        functions: FunctionRegistry,
        tasks: TaskRunner,
        map_outputs: MapOutputTracker,
        max_stage_attempts: int = 4,
    ) -> None:
        self._functions = functions
        self._tasks = tasks
        self._map_outputs = map_outputs
        self._max_attempts = max_stage_attempts
        self._task_ids = itertools.count(1)
        self._stage_ids = itertools.count(1)

    def run_job(
        self,
        rdd: RDD,
        result_fn: Callable[[int, Any], Any],
        partitions: Iterable[int] | None = None,
    ) -> list[Any]:
        """Values of result_fn over the given partitions, in partition order."""
        wanted = list(range(rdd.num_partitions) if partitions is None else partitions)
        fn = self._functions.ref(result_fn)
        results = self._read_while_updating(rdd, wanted, fn)
        missing = [p for p in wanted if p not in results]
        if missing:
            output = ResultOutput(fn)
            done = self._run_to_completion(rdd, missing, lambda _split: output, set())
            results.update((p, done[p][1]) for p in missing)
        return [results[p] for p in wanted]

    def _read_while_updating(self, rdd: RDD, wanted: list[int], fn: FunctionRef) -> dict[int, Any]:
        """When every partition of rdd reads one state version not yet computed, compute it in
        a stage whose tasks then run the result on it (tasks.ReadBack): one stage fewer. What
        it gives: the results of the partitions whose read succeeded; the others, as a read
        that failed, are left to a result stage of their own, which reports the failure."""
        if wanted != list(range(rdd.num_partitions)):
            return {}
        reads = [read for split in wanted if (read := rdd.state_read(split)) is not None]
        if not reads or len(reads) < len(wanted) or any(r[0] is not reads[0][0] for r in reads):
            return {}

        # Built before the update: an op that cannot be pickled is left to the result stage,
        # which fails the job after the update is kept, as any failing read does.
        try:
            backs = [
                ReadBack(source.view, source.since, tuple(map(self._functions.ref, ops)), fn)
                for _, source, ops in reads
            ]
        except Exception:
            return {}
        done = self._materialise(reads[0][0], set(), backs.__getitem__)
        return {
            split: value.value
            for split, (_, value) in done.items()
            if isinstance(value, UpdatedAndRead) and value.error is None
        }

    def _run_to_completion(
        self,
        rdd: RDD,
        wanted: list[int],
        output: Callable[[int], OutputSpec],
        shuffles_done: set[int],
        prefer: Callable[[int], tuple[str, ...]] | None = None,
    ) -> dict[int, tuple[ExecutorAddress, Any]]:
        """Run a final stage until every wanted partition completed, recomputing lost parents."""
        results: dict[int, tuple[ExecutorAddress, Any]] = {}
        for _ in range(self._max_attempts):
            self._ensure_parents(rdd, shuffles_done)
            missing = [p for p in wanted if p not in results]
            if not missing:
                return results
            outcome = self._run_stage(rdd, missing, output, prefer)
            results.update(outcome.completed)
            if outcome.error:
                raise JobFailedError(outcome.error)
            self._forget_failed_fetches(outcome, shuffles_done)
        if all(p in results for p in wanted):
            return results
        raise JobFailedError(f"stage failed {self._max_attempts} times on fetch failures")

    def _materialise(
        self,
        persisted: PersistedRDD,
        shuffles_done: set[int],
        then: Callable[[int], ReadBack] | None = None,
    ) -> dict[int, tuple[ExecutorAddress, Any]]:
        """Compute and store persisted's blocks, unless stored already (then: {}). With `then`
        (a state version only), each task then reads what it stored; returns the tasks'
        values."""
        with persisted.lock:
            if persisted.blocks is not None:
                return {}
            if persisted.failure is not None:
                raise JobFailedError(persisted.failure)
            peers = sorted(self._tasks.executors().values(), key=lambda a: a.executor_id)

            def output(split: int) -> OutputSpec:
                turn = split % len(peers) if peers else 0
                spec = persisted.store_output(split, tuple(peers[turn:] + peers[:turn]))
                if then is not None and isinstance(spec, UpdateState):
                    spec = dataclasses.replace(spec, then=then(split))
                return spec

            splits = list(range(persisted.num_partitions))
            parent = persisted.parent
            assert parent is not None, "an unmaterialised persisted RDD keeps its parent"
            for other in persisted.narrow_parents():
                if other is not parent:  # a state's previous version, updated in place
                    self._ensure_parents(other, shuffles_done)
            try:
                done = self._run_to_completion(
                    parent, splits, output, shuffles_done, persisted.task_preference
                )
            except JobFailedError as exc:
                persisted.failed(str(exc))
                raise
            executors = self._tasks.executors()
            blocks = []
            for split in splits:
                location, replica = done[split]
                if isinstance(replica, UpdatedAndRead):
                    replica = replica.replica
                copies = [location]
                if replica in executors:
                    copies.append(executors[replica])
                blocks.append((persisted.block_id(split), tuple(copies)))
            persisted.materialised(blocks)
            return done

    def _ensure_parents(self, rdd: RDD, done: set[int]) -> None:
        for persisted in _unmaterialised(rdd):
            self._materialise(persisted, done)
        for dep in _shuffle_dependencies(rdd):
            if dep.shuffle_id not in done:
                self._ensure_shuffle(dep, done)

    def _ensure_shuffle(self, dep: ShuffleDependency, done: set[int]) -> None:
        parent = dep.rdd
        self._map_outputs.register_shuffle(dep.shuffle_id, parent.num_partitions)
        partitioner = self._functions.ref(dep.partitioner) if dep.partitioner else None
        aggregator = self._functions.ref(dep.aggregator) if dep.aggregator else None

        def output(split: int) -> OutputSpec:
            return ShuffleWrite(dep.shuffle_id, split, dep.num_partitions, partitioner, aggregator)

        for _ in range(self._max_attempts):
            self._ensure_parents(parent, done)
            missing = self._map_outputs.missing(dep.shuffle_id)
            if not missing:
                done.add(dep.shuffle_id)
                return
            outcome = self._run_stage(parent, missing, output)
            for split, (location, _) in outcome.completed.items():
                self._map_outputs.register_output(dep.shuffle_id, split, location)
            if outcome.error:
                raise JobFailedError(outcome.error)
            self._forget_failed_fetches(outcome, done)
        raise JobFailedError(
            f"shuffle {dep.shuffle_id} failed {self._max_attempts} times on fetch failures"
        )

    def _forget_failed_fetches(self, outcome: TaskSetOutcome, done: set[int]) -> None:
        for shuffle_id, map_index, executor_id in outcome.fetch_failures:
            self._map_outputs.unregister_output(shuffle_id, map_index, executor_id)
            self._map_outputs.remove_executor(executor_id)
            done.clear()

    def _run_stage(
        self,
        rdd: RDD,
        splits: list[int],
        output: Callable[[int], OutputSpec],
        prefer: Callable[[int], tuple[str, ...]] | None = None,
    ) -> TaskSetOutcome:
        stage_id = next(self._stage_ids)
        planned = []
        for split in splits:
            try:
                source, ops = rdd.plan(split, self._map_outputs.locations)
            except FetchFailedError as lost:
                return TaskSetOutcome(fetch_failures=[(lost.shuffle_id, lost.map_index, "")])
            task = TaskDescription(
                task_id=next(self._task_ids),
                stage_id=stage_id,
                partition=split,
                source=source,
                ops=tuple(self._functions.ref(op) for op in ops),
                output=output(split),
            )
            preferred = prefer(split) if prefer is not None else rdd.preferred_executors(split)
            planned.append(PlannedTask(task, preferred))
        return self._tasks.run_taskset(planned)


def _unmaterialised(rdd: RDD) -> list[PersistedRDD]:
    """Persisted RDDs not yet computed: rdd itself or reachable through narrow edges."""
    walked = walk_lineage([rdd], stop=_is_unmaterialised)
    return [r for r in walked if isinstance(r, PersistedRDD) and r.blocks is None]


def _is_unmaterialised(rdd: RDD) -> bool:
    return isinstance(rdd, PersistedRDD) and rdd.blocks is None


def _shuffle_dependencies(rdd: RDD) -> list[ShuffleDependency]:
    """Shuffle dependencies reachable from rdd through narrow edges only."""
    return [dep for r in walk_lineage([rdd]) for dep in r.shuffle_dependencies()]
