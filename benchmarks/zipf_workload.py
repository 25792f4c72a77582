"""The stateful workload users run: lines of words drawn from a Zipf vocabulary, one file a batch.

Every contender reads the same files and must end with the same running totals.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from pathlib import Path

VOCABULARY = 50_000
WORDS_PER_LINE = 10


def vocabulary(size: int = VOCABULARY) -> list[str]:
    return [f"w{i}" for i in range(size)]


def write_zipf_files(
    directory: Path,
    lines: int,
    files: int,
    size: int = VOCABULARY,
    exponent: float = 1.0,
    seed: int = 7,
) -> list[Path]:
    """`files` files of lines // files lines, each of WORDS_PER_LINE Zipf-distributed words."""
    directory.mkdir(parents=True, exist_ok=True)
    words = vocabulary(size)
    cumulative = list(itertools.accumulate(1 / (rank**exponent) for rank in range(1, size + 1)))
    rng = random.Random(seed)
    per_file = lines // files
    paths = []
    for i in range(files):
        drawn = rng.choices(words, cum_weights=cumulative, k=per_file * WORDS_PER_LINE)
        text = "\n".join(
            " ".join(drawn[j : j + WORDS_PER_LINE]) for j in range(0, len(drawn), WORDS_PER_LINE)
        )
        staged = directory / f".part-{i}"
        staged.write_text(text + "\n")
        final = directory / f"part-{i:04d}.txt"
        staged.rename(final)
        paths.append(final)
    return paths


def batch_counts(path: str) -> Counter[str]:
    """One batch's word counts: the tightest loop a person would write."""
    counts: Counter[str] = Counter()
    with open(path, encoding="utf-8") as f:
        for line in f:
            counts.update(line.split())
    return counts


def add_to_totals(totals: dict[str, int], counts: Counter[str]) -> list[tuple[str, int]]:
    """Add a batch to the running totals; returns every updated (word, total)."""
    updated = []
    for word, n in counts.items():
        total = totals.get(word, 0) + n
        totals[word] = total
        updated.append((word, total))
    return updated
