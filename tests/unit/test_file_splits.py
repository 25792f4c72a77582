"""A file read in line splits gives exactly the lines of the whole file, however it is cut.

The reference is the file read whole in text mode (what one partition per file
read before): any mix of line endings, non-ASCII text and invalid UTF-8, cut at
any byte offsets, must give the same lines in the same order, each once.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubestream.core import rdd
from kubestream.core.tasks import FileSource, _read_lines

pieces = st.lists(
    st.one_of(
        st.text(alphabet="ab é€\t", max_size=6).map(str.encode),
        st.sampled_from([b"\n", b"\r\n", b"\r", b"\xe2\x82", b"\xff", b"\x0b"]),
    ),
    max_size=40,
)


def whole_file_lines(path: Path) -> list[str]:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read().splitlines()


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(parts=pieces, data=st.data())
def test_line_splits_at_any_offsets_give_the_whole_files_lines(
    tmp_path: Path, parts: list[bytes], data: st.DataObject
) -> None:
    path = tmp_path / "input.txt"
    content = b"".join(parts)
    path.write_bytes(content)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(content)), max_size=6)))
    bounds = [0, *cuts, len(content)]
    lines = [
        line
        for a, b in itertools.pairwise(bounds)
        for line in _read_lines(FileSource(str(path), a, None if b == len(content) else b))
    ]
    assert lines == whole_file_lines(path)


def test_a_large_file_is_shared_by_the_executors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rdd, "MIN_SPLIT_BYTES", 64)
    big, small = tmp_path / "big.txt", tmp_path / "small.txt"
    big.write_text("".join(f"line {i} with some words\n" for i in range(100)))
    small.write_text("one line\n")
    sources = rdd.file_sources([str(big), str(small)], parallelism=2)
    on_big = [s for s in sources if isinstance(s, FileSource) and s.path == str(big)]
    assert len(on_big) == 2
    lines = [line for s in sources for line in _read_lines(s)]  # type: ignore[arg-type]
    assert lines == whole_file_lines(big) + whole_file_lines(small)
