"""The public API documents itself: every public callable a user reaches has a docstring."""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import pytest

import kubestream
from kubestream import RDD, DStream, StreamingContext
from kubestream.streaming.context import StreamingContextState
from kubestream.streaming.sources.kafka.stream import KafkaInputDStream
from kubestream.streaming.sources.queue import QueueInputDStream
from kubestream.streaming.state import MapWithStateDStream

# Classes a user holds without importing them by name: what operators and sources return.
REACHED = [KafkaInputDStream, MapWithStateDStream, QueueInputDStream, StreamingContextState]


def public_classes() -> list[type]:
    exported = [getattr(kubestream, name) for name in kubestream.__all__]
    return [c for c in exported if inspect.isclass(c)] + REACHED


def public_members(cls: type) -> Iterator[tuple[str, object]]:
    """Public methods and properties cls defines or inherits from kubestream classes."""
    for name in dir(cls):
        if name.startswith("_"):
            continue
        owner = next(k for k in cls.__mro__ if name in vars(k))
        if not owner.__module__.startswith("kubestream"):
            continue
        member = vars(owner)[name]
        if isinstance(member, staticmethod | classmethod | property) or inspect.isfunction(member):
            yield f"{owner.__name__}.{name}", getattr(cls, name)


def documented(member: object) -> bool:
    """As help() shows it: an override without a docstring shows its base's."""
    return bool((inspect.getdoc(member) or "").strip())


def test_every_exported_name_has_a_docstring() -> None:
    missing = [n for n in kubestream.__all__ if not inspect.getdoc(getattr(kubestream, n))]
    assert missing == []


@pytest.mark.parametrize("cls", public_classes(), ids=lambda c: c.__name__)
def test_every_public_method_and_property_has_a_docstring(cls: type) -> None:
    missing = [name for name, member in public_members(cls) if not documented(member)]
    assert missing == []


def test_the_walk_sees_the_operators() -> None:
    """Guards the walk itself: it reaches operators, properties and static methods."""
    names = {name for cls in public_classes() for name, _ in public_members(cls)}
    assert {"DStream.map", "DStream.slide_ms", "RDD.collect", "StateSpec.of"} <= names
    assert {"StreamingContext.start", "StreamingContext.batches", "Receiver.store"} <= names


@pytest.mark.parametrize("cls", [StreamingContext, kubestream.StateSpec], ids=lambda c: c.__name__)
def test_every_constructor_parameter_is_documented(cls: type) -> None:
    doc = inspect.getdoc(cls) or ""
    params = [p for p in inspect.signature(cls).parameters if p != "self"]
    assert [p for p in params if f"{p} :" not in doc] == []


@pytest.mark.parametrize(
    "method",
    [
        DStream.window,
        DStream.reduce_by_key_and_window,
        DStream.combine_by_key,
        DStream.update_state_by_key,
        RDD.combine_by_key,
        StreamingContext.kafka_stream,
        DStream.write_to_kafka,
    ],
    ids=lambda m: m.__qualname__,
)
def test_operators_with_subtle_arguments_document_each(method: object) -> None:
    doc = inspect.getdoc(method) or ""
    params = [p for p in inspect.signature(method).parameters if p != "self"]  # type: ignore[arg-type]
    assert [p for p in params if f"{p} :" not in doc] == []
    assert "Raises" in doc


def test_the_lifecycle_enum_no_longer_shares_kubestream_state_name() -> None:
    assert StreamingContextState is not kubestream.State
    assert [s.value for s in StreamingContextState] == ["initialized", "active", "stopped"]
