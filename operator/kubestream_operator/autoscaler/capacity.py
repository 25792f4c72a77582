"""What one executor processes, estimated from recent batches.

The model, as DS2 and Flink's autoscaler assume, is linear: a batch of ``R``
records on ``k`` executors takes ``fixed + per_record * R / k`` seconds, where
``fixed`` is the per-batch cost no executor shares (scheduling, output
commits) and ``per_record`` the executor-seconds one record costs. Both come
from a least-squares fit of processing time on records per executor over the
batches seen, each weighted by its age (half-life ``HALF_LIFE_SECONDS``), so
batches run at several executor counts pin down the fixed cost and the fit
follows a job whose cost per record drifts. The sums live in the job's status
(``Capacity`` is what is stored), so a restarted operator keeps its estimate.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace

HALF_LIFE_SECONDS = 900.0
# Fewer (weighted) batches than this and the estimate is not trusted.
MIN_WEIGHT = 3.0
# Records per executor varying less than this (relative) cannot separate the two costs.
MIN_SPREAD = 0.02


@dataclass(frozen=True)
class Model:
    """``fixed`` seconds per batch plus ``per_record`` executor-seconds per record."""

    fixed: float
    per_record: float

    def processing_time(self, records: float, executors: int) -> float:
        """Predicted seconds for a batch of ``records`` on ``executors`` (>= 1)."""
        return self.fixed + self.per_record * records / max(executors, 1)

    def executors_for(self, records: float, seconds: float) -> int | None:
        """Fewest executors that process ``records`` within ``seconds``; None if none can.

        None means the fixed cost alone reaches ``seconds``: adding executors cannot help.
        """
        if seconds - self.fixed <= 1e-9 * max(seconds, 1.0):
            return None
        if self.per_record <= 0 or records <= 0:
            return 1
        return max(1, math.ceil(self.per_record * records / (seconds - self.fixed) - 1e-9))


@dataclass(frozen=True)
class Capacity:
    """Age-weighted least-squares sums of processing time (y) on records per executor (x)."""

    updated: float | None = None
    weight: float = 0.0
    sum_x: float = 0.0
    sum_y: float = 0.0
    sum_xx: float = 0.0
    sum_xy: float = 0.0

    def add(self, now: float, samples: Iterable[tuple[float, float]]) -> "Capacity":
        """These sums decayed to ``now`` plus ``samples`` of (records per executor, seconds)."""
        age = 0.0 if self.updated is None else max(now - self.updated, 0.0)
        decay = 0.5 ** (age / HALF_LIFE_SECONDS)
        w, sx, sy, sxx, sxy = (
            self.weight * decay,
            self.sum_x * decay,
            self.sum_y * decay,
            self.sum_xx * decay,
            self.sum_xy * decay,
        )
        for x, y in samples:
            w, sx, sy, sxx, sxy = w + 1, sx + x, sy + y, sxx + x * x, sxy + x * y
        return replace(self, updated=now, weight=w, sum_x=sx, sum_y=sy, sum_xx=sxx, sum_xy=sxy)

    def model(self) -> Model | None:
        """The fitted model, or None with too few batches to trust one."""
        if self.weight < MIN_WEIGHT or self.sum_y <= 0:
            return None
        mean_x, mean_y = self.sum_x / self.weight, self.sum_y / self.weight
        variance = self.sum_xx / self.weight - mean_x * mean_x
        proportional = Model(0.0, self.sum_y / self.sum_x) if self.sum_x > 0 else None
        if mean_x <= 0:
            return Model(mean_y, 0.0)
        if variance <= (MIN_SPREAD * mean_x) ** 2:
            return proportional
        slope = (self.sum_xy / self.weight - mean_x * mean_y) / variance
        intercept = mean_y - slope * mean_x
        if slope < 0:
            return Model(mean_y, 0.0)
        if intercept < 0:
            return proportional
        return Model(intercept, slope)
