"""Built-in output operations: pprint and save_as_text_files.

Text files are written by the driver from the partitions' formatted lines into a
hidden temporary directory, fsynced, then renamed into place, so a reader never
sees a half-written batch and re-running a batch after recovery replaces it whole.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from kubestream.core.rdd import RDD


def batch_time_text(batch_time: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(batch_time / 1000)) + (
        f".{batch_time % 1000:03d}" if batch_time % 1000 else ""
    )


def print_batch(batch_time: int, rdd: RDD, num: int) -> None:
    taken = rdd.take(num + 1)
    lines = ["-------------------------------------------", f"Time: {batch_time_text(batch_time)}"]
    lines.append("-------------------------------------------")
    lines += [str(record) for record in taken[:num]]
    if len(taken) > num:
        lines.append("...")
    sys.stdout.write("\n".join(lines) + "\n\n")
    sys.stdout.flush()


def batch_directory(prefix: str, batch_time: int, suffix: str | None) -> str:
    return f"{prefix}-{batch_time}" + (f".{suffix}" if suffix else "")


def _format_partition(index: int, records: Iterator[Any]) -> str:
    return "".join(f"{record}\n" for record in records)


def save_text_batch(batch_time: int, rdd: RDD, prefix: str, suffix: str | None) -> None:
    parts = rdd.engine.run_job(rdd, _format_partition)
    write_text_directory(batch_directory(prefix, batch_time, suffix), parts)


def write_text_directory(final: str, parts: list[str]) -> None:
    parent = os.path.dirname(os.path.abspath(final))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(final)}.", suffix=".tmp", dir=parent)
    for index, text in enumerate(parts):
        with open(os.path.join(staging, f"part-{index:05d}"), "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    with open(os.path.join(staging, "_SUCCESS"), "w"):
        pass
    _fsync_directory(staging)
    if os.path.exists(final):
        trash = tempfile.mkdtemp(prefix=f".{os.path.basename(final)}.", suffix=".old", dir=parent)
        os.rename(final, os.path.join(trash, "batch"))
        os.rename(staging, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.rename(staging, final)
    _fsync_directory(parent)


def _fsync_directory(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
