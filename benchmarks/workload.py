"""The word-count workload shared by every contender: the same lines, the same answer."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

WORDS = [f"w{i}" for i in range(2000)]


def make_lines(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=10)) for _ in range(count)]


def write_files(directory: Path, lines: list[str], files: int) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    step = -(-len(lines) // files)
    for i in range(files):
        staged = directory / f".part-{i}"
        staged.write_text("\n".join(lines[i * step : (i + 1) * step]) + "\n")
        final = directory / f"part-{i:04d}.txt"
        paths.append(final)
        staged.rename(final)
    return paths


def count_words(paths: list[str]) -> Counter[str]:
    """The plain-Python floor: the tightest loop a person would write."""
    counts: Counter[str] = Counter()
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                counts.update(line.split())
    return counts
