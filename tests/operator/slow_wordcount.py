"""A word count whose every line costs a fixed wall-clock time, for the autoscaler tests.

Each line waits ``--seconds-per-line`` before it is split, as a call to a slow service
would: what one executor processes per second is known, and another executor adds
as much again even on a busy machine (its tasks wait, they do not compute). Each new
file in ``--dir`` is one partition of its batch; each batch's counts go to
``--out``-<batch time> as ``('word', count)`` lines.

    kubestream driver --app tests/operator/slow_wordcount.py \\
        --app-args "--dir /tmp/in --out /tmp/counts --seconds-per-line 0.01"
"""

from __future__ import annotations

import argparse
import operator
import time

from kubestream import StreamingContext


def build(ssc: StreamingContext, args: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="slow_wordcount")
    parser.add_argument("--dir", required=True, help="directory to watch for new text files")
    parser.add_argument("--out", required=True, help="prefix of per-batch output directories")
    parser.add_argument("--seconds-per-line", type=float, required=True)
    options = parser.parse_args(args)
    cost = options.seconds_per_line

    def slow_split(line: str) -> list[str]:
        time.sleep(cost)
        return line.split()

    counts = (
        ssc.text_file_stream(options.dir)
        .flat_map(slow_split)
        .map(lambda word: (word, 1))
        .reduce_by_key(operator.add)
    )
    counts.save_as_text_files(options.out)
