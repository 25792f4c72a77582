"""The type variables of the public API: what RDD[T] and DStream[T] hold.

Each defaults to Any (PEP 696), so a bare `RDD` or `DStream` in an annotation
still means "of anything" under mypy --strict.
"""

from __future__ import annotations

from typing import Any

from typing_extensions import TypeVar

T = TypeVar("T", default=Any)
"""A record."""
U = TypeVar("U", default=Any)
"""A record a function returns."""
K = TypeVar("K", default=Any)
"""A key of a (key, value) record."""
V = TypeVar("V", default=Any)
"""A value of a (key, value) record."""
W = TypeVar("W", default=Any)
"""A value of the other side of a join or cogroup."""
C = TypeVar("C", default=Any)
"""A combiner: the per-key accumulator of combine_by_key."""
S = TypeVar("S", default=Any)
"""A key's state (update_state_by_key, map_with_state)."""
M = TypeVar("M", default=Any)
"""A record a map_with_state function emits."""
