"""CPython set for batch processing: the cyclic garbage collector and the GIL switch interval.

The collector. CPython collects its youngest generation every 700 net new container
objects, and a batch keeps many alive at once: map_with_state holds a State per key
with records, update_state_by_key a list of values per key. On the stateful benchmark
(issue 16, measured with gc.callbacks) the collector took 10 % of an executor's CPU
under update_state_by_key and 15 % under map_with_state, walking the same live objects
again and again. Collecting the youngest generation every 50,000 instead, with the
objects alive after startup frozen out of collections, it took 0 % and 8 %. Cyclic
garbage, which record processing rarely makes (reference counting frees the rest),
waits longer: at most about 50,000 objects.

The switch interval. While a task computes, the executor's other threads answer its
peers (a shuffle fetch, a state delta put): each time such a thread wakes it waits for
the GIL, by default up to 5 ms, and one answer takes several wakes. A stateful task
waiting on its busy peer waited 1-29 ms for a delta put. At 1 ms the waits are 1-8 ms,
and result latency at 20,000 lines/s fell by 10-25 % (p50 and p99, two interleaved
runs of benchmarks/stateful.py --only latency each way).
"""

from __future__ import annotations

import gc
import sys

YOUNG_GENERATION_THRESHOLD = 50_000
SWITCH_INTERVAL_SECONDS = 0.001


def tune_for_batches() -> None:
    """Freeze what is alive now (modules, classes) and collect the young generation
    less often (the older generations keep CPython's defaults); let a thread waiting for
    the GIL have it within 1 ms. Call once at startup."""
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, oldest)
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
