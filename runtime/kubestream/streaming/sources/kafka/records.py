"""Turning a stream's records into Kafka records for the sink: key, value, headers.

By default a (key, value) pair gives both, any other record is the value with no
key; str is encoded as UTF-8, bytes go as they are, None is a null key or a
tombstone value. `key`, `value` and `headers` functions of the sink pick other
fields. A record that cannot be sent is named with its type and what to do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Encodable = str | bytes | None
Headers = Sequence[tuple[str, Encodable]]


@dataclass(frozen=True, slots=True)
class RecordShape:
    """The sink's key/value/headers functions; None for the defaults above."""

    key: Callable[[Any], Encodable] | None = None
    value: Callable[[Any], Encodable] | None = None
    headers: Callable[[Any], Headers] | None = None

    def split(
        self, record: Any
    ) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]]]:
        if self.key is None and self.value is None:
            if isinstance(record, tuple) and len(record) == 2:
                key, value = record
            else:
                key, value = None, record
        else:
            key = self.key(record) if self.key is not None else None
            value = self.value(record) if self.value is not None else record
        headers = (
            [(name, _encode(v, record, f"header {name!r}")) for name, v in self.headers(record)]
            if self.headers
            else []
        )
        return _encode(key, record, "key"), _encode(value, record, "value"), headers


def _encode(part: object, record: object, what: str) -> bytes | None:
    if part is None or isinstance(part, bytes):
        return part
    if isinstance(part, str):
        return part.encode()
    if isinstance(part, int | float):
        return str(part).encode()
    shown = repr(record)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    raise TypeError(
        f"the Kafka {what} of record {shown} is a {type(part).__name__}; it must be str, bytes,"
        " a number or None: pass key=/value=/headers= functions to write_to_kafka to convert it"
    )
