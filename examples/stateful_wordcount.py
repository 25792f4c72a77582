"""Running word totals across batches, resumable from a checkpoint.

    kubestream run examples/stateful_wordcount.py --checkpoint /tmp/ckpt \\
        -- --dir /tmp/words --out /tmp/out

Writes each batch's counts to OUT/counts-<ms>/ and the running totals to OUT/totals-<ms>/.
Killed and started again on the same checkpoint directory, it resumes where it
stopped: every file is counted exactly once.
"""

from __future__ import annotations

import argparse
import operator
import os

from kubestream import StreamingContext


def add_to_total(counts: list[int], total: int | None) -> int:
    return sum(counts) + (total or 0)


def build(ssc: StreamingContext, args: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="stateful_wordcount")
    parser.add_argument("--dir", required=True, help="directory to watch for new text files")
    parser.add_argument("--out", required=True, help="directory for per-batch outputs")
    options = parser.parse_args(args)

    words = ssc.text_file_stream(options.dir).flat_map(str.split).map(lambda w: (w, 1))
    counts = words.reduce_by_key(operator.add)
    counts.save_as_text_files(os.path.join(options.out, "counts"))
    counts.update_state_by_key(add_to_total).save_as_text_files(os.path.join(options.out, "totals"))
