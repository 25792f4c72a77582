"""The bodies of the events a Flume agent's Thrift sink sends, saved per batch.

    kubestream run examples/flume_events.py --checkpoint /tmp/ckpt --write-ahead-log -- \\
        --port 41414 --out /tmp/out

The agent's sink: type = thrift, hostname/port = this receiver's address,
batch-size <= the channel's transactionCapacity (see the README). Each batch's
bodies (UTF-8) go to OUT/events-<ms>/.
"""

from __future__ import annotations

import argparse
import os

from kubestream import StreamingContext


def build(ssc: StreamingContext, args: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="flume_events")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True, help="directory for per-batch outputs")
    options = parser.parse_args(args)

    events = ssc.flume_stream(options.host, options.port)
    events.map(lambda event: event[1].decode()).save_as_text_files(
        os.path.join(options.out, "events")
    )
