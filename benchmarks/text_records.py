"""How text records are cut, on this machine, written as JSON (never asserted in tests).

    .venv/bin/python benchmarks/text_records.py [--out benchmarks/results/text_records.json]

Measures (issue 14 item 5) the time to cut one record of 6, 12 and 24 MiB received
in 64 KiB chunks, with the splitter every text source uses and with the socket
receiver's former loop (append each chunk, split the whole buffer again), and the
peak memory of the 24 MiB record under max_record_bytes = 1 MiB; and (item 2) how
fast read_text_file reads a file of 200,000 lines plain, gzip'd, bzip2'd and zstd'd,
beside the former reader (whole file, str.splitlines, which holds it all in memory).
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import json
import platform
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zstandard

from kubestream.core.input_files import read_text_file
from kubestream.core.lines import LineSplitter

CHUNK = 65536
MIB = 1 << 20


def chunks(size: int) -> list[bytes]:
    piece = b"x" * CHUNK
    return [piece] * (size // CHUNK) + [b"\n"]


def splitter_seconds(data: list[bytes]) -> float:
    started = time.perf_counter()
    splitter = LineSplitter()
    for chunk in data:
        splitter.feed(chunk)
    return time.perf_counter() - started


def former_loop_seconds(data: list[bytes]) -> float:
    """The socket receiver before: bytes concatenation and a split of the whole buffer."""
    started = time.perf_counter()
    pending = b""
    for chunk in data:
        pending += chunk
        *_, pending = pending.split(b"\n")
    return time.perf_counter() - started


def peak_bytes(action: Callable[[], None]) -> int:
    tracemalloc.start()
    action()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def bounded_long_record() -> None:
    splitter = LineSplitter(max_record_bytes=MIB)
    for chunk in chunks(24 * MIB):
        splitter.feed(chunk)
    assert splitter.dropped == 1


def read_seconds(directory: Path, name: str, payload: bytes) -> dict[str, Any]:
    path = directory / name
    path.write_bytes(payload)
    started = time.perf_counter()
    records = sum(1 for _ in read_text_file(str(path)))
    seconds = time.perf_counter() - started
    return {"file_bytes": len(payload), "records": records, "seconds": round(seconds, 4)}


def former_read_seconds(path: Path) -> dict[str, Any]:
    """The directory source before: the whole file decoded, then str.splitlines."""
    started = time.perf_counter()
    with open(path, encoding="utf-8", errors="replace") as f:
        records = len(f.read().splitlines())
    seconds = time.perf_counter() - started
    return {"file_bytes": path.stat().st_size, "records": records, "seconds": round(seconds, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/text_records.json")
    args = parser.parse_args()
    long_records = []
    for mib in (6, 12, 24):
        data = chunks(mib * MIB)
        long_records.append(
            {
                "record_mib": mib,
                "splitter_seconds": round(min(splitter_seconds(data) for _ in range(3)), 4),
                "former_loop_seconds": round(former_loop_seconds(data), 4),
            }
        )
    text = "".join(f"{i},event-{i % 97},{'v' * (i % 50)}\r\n" for i in range(200_000)).encode()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        reads = {
            "plain": read_seconds(directory, "lines.txt", text),
            "gzip": read_seconds(directory, "lines.txt.gz", gzip.compress(text)),
            "bzip2": read_seconds(directory, "lines.txt.bz2", bz2.compress(text)),
            "zstd": read_seconds(
                directory, "lines.txt.zst", zstandard.ZstdCompressor().compress(text)
            ),
            "plain, former reader": former_read_seconds(directory / "lines.txt"),
        }
    result = {
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
        "chunk_bytes": CHUNK,
        "one_long_record": long_records,
        "peak_bytes_24_mib_record_over_1_mib_limit": peak_bytes(bounded_long_record),
        "read_text_file": reads,
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
