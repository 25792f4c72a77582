"""Soak benchmark app: a stateful word count over lines read from a socket.

Arguments: HOST PORT. Each batch adds its word counts to a running total per word
(update_state_by_key) and counts the state's keys on the executors, so every batch
touches the whole state, as a long-running stateful job does.
"""

from __future__ import annotations

from operator import add

from kubestream import StreamingContext


def _total(new: list[int], old: int | None) -> int:
    return sum(new) + (old or 0)


def build(ssc: StreamingContext, args: list[str]) -> None:
    host, port = args[0], int(args[1])
    lines = ssc.socket_text_stream(host, port)
    counts = lines.flat_map(str.split).map(lambda w: (w, 1)).reduce_by_key(add)
    counts.update_state_by_key(_total).foreach_rdd(lambda rdd: rdd.count())
