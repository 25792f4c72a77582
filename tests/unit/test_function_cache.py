"""The executor's function cache: launch order, lazy loading, and loading errors kept."""

from __future__ import annotations

import importlib
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubestream.core.functions import FunctionCache, FunctionLoadError, FunctionRegistry


class _ImportsMissingModule:
    """Unpickles by importing a module no executor has."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return importlib.import_module, ("kubestream_no_such_module",)


def test_a_task_that_runs_before_the_one_carrying_its_function_still_finds_it() -> None:
    registry = FunctionRegistry()
    ref = registry.ref(len)
    cache = FunctionCache()
    cache.add({ref: registry.blob(ref)})  # task 1 carried it; task 2 runs first
    assert cache.get(ref) is len
    cache.add({})  # task 2 carried nothing
    assert cache.get(ref) is len


@given(st.integers(min_value=1, max_value=6))
def test_an_unloadable_function_fails_every_use_with_its_own_error(uses: int) -> None:
    cache = FunctionCache()
    cache.add({"bad": pickle.dumps(_ImportsMissingModule())})
    for _ in range(uses):
        cache.add({"bad": pickle.dumps(_ImportsMissingModule())})
        with pytest.raises(FunctionLoadError, match="No module named 'kubestream_no_such_module'"):
            cache.get("bad")


def test_a_function_never_sent_is_named() -> None:
    with pytest.raises(FunctionLoadError, match="abc was never sent"):
        FunctionCache().get("abc")
