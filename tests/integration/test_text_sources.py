"""Text sources on real executor processes: the same tricky bytes give the same records from
every text source, a file gone before its task is skipped and counted, an endless socket
record is dropped and counted."""

from __future__ import annotations

import gzip
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import zstandard

from kubestream import StreamingContext
from kubestream.core.engine import wait_until
from kubestream.core.protocol import BadRecords, BlockAdded, BlockRecorded, ToDriver
from kubestream.core.rdd import RDD
from kubestream.driver.status import context_status
from kubestream.executor.receiver_supervisor import ReceiverSupervisor
from kubestream.storage.block_manager import BlockManager, deserialise
from kubestream.streaming.sources.socket import SocketTextReceiver
from tests.integration.conftest import Cluster
from tests.unit.test_lines import hadoop_records

# Records holding what str.splitlines breaks at (VT, FF, FS, GS, RS, NEL, LS, PS), ended by
# each of Hadoop's terminators in turn, a CR LF split across socket chunks included.
RECORDS = [
    '{"text": "form\x0cfeed", "n": 1}',
    "vertical\x0btab",
    "file\x1cgroup\x1drecord\x1eunit",
    "next\x85line",
    "line\u2028separator\u2029paragraph",
    "",
    "  spaces  ",
    "é ü 日本",
]
PAYLOAD = (
    b"".join(r.encode() + (b"\n", b"\r\n", b"\r")[i % 3] for i, r in enumerate(RECORDS * 5))
    + b"last without terminator"
)
EXPECTED = [r.decode() for r in hadoop_records(PAYLOAD)]


def collect_into(records: list[str]) -> Callable[[RDD], None]:
    def collect(rdd: RDD) -> None:
        records.extend(rdd.collect())

    return collect


@contextmanager
def serving(payload: bytes, chunk: int) -> Iterator[int]:
    """A TCP server sending `payload` in `chunk`-byte pieces to its first client."""
    server = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            for start in range(0, len(payload), chunk):
                conn.sendall(payload[start : start + chunk])
            done.wait(30)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield server.getsockname()[1]
    finally:
        done.set()
        server.close()


def test_every_text_source_gives_the_records_hadoop_gives(cluster: Cluster, tmp_path: Path) -> None:
    expected_count = len(EXPECTED)
    ssc = StreamingContext(0.2, engine=cluster.engine)
    plain: list[str] = []
    gzipped: list[str] = []
    zstd: list[str] = []
    sockets: list[str] = []
    dirs = {name: tmp_path / name for name in ("plain", "gz", "zst")}
    for path in dirs.values():
        path.mkdir()
    ssc.text_file_stream(str(dirs["plain"])).foreach_rdd(collect_into(plain))
    ssc.text_file_stream(str(dirs["gz"])).foreach_rdd(collect_into(gzipped))
    ssc.text_file_stream(str(dirs["zst"])).foreach_rdd(collect_into(zstd))
    with serving(PAYLOAD, 7) as port:
        ssc.socket_text_stream("127.0.0.1", port).foreach_rdd(collect_into(sockets))
        ssc.start()
        for name, data in (
            ("plain", PAYLOAD),
            ("gz", gzip.compress(PAYLOAD)),
            ("zst", zstandard.ZstdCompressor().compress(PAYLOAD)),
        ):
            suffix = "" if name == "plain" else f".{name}"
            staged = tmp_path / f"staged{suffix}"
            staged.write_bytes(data)
            staged.rename(dirs[name] / f"records{suffix}")
        assert wait_until(
            lambda: (
                min(len(plain), len(gzipped), len(zstd)) >= expected_count
                and len(sockets) >= expected_count - 1
            ),
            30,
        )
        ssc.stop(stop_engine=False, graceful=True, timeout=10)
    assert plain == EXPECTED
    assert gzipped == EXPECTED
    assert zstd == EXPECTED
    # The socket's last record ends when the connection does; graceful stop comes first.
    assert sockets == EXPECTED[: len(sockets)]
    assert len(sockets) >= expected_count - 1


def test_a_file_gone_before_its_task_is_skipped_on_executors(
    cluster: Cluster, tmp_path: Path
) -> None:
    inbox = tmp_path / "in"
    victim = inbox / "b.txt"

    def vanish(rdd: RDD) -> RDD:
        # On the driver, after the batch's files were chosen, before any task opens them.
        if victim.exists():
            victim.unlink()
        return rdd

    ssc = StreamingContext(0.2, engine=cluster.engine)
    records: list[str] = []
    ssc.text_file_stream(str(inbox)).transform(vanish).foreach_rdd(collect_into(records))
    ssc.start()
    # The three files appear in one step: their directory is renamed into place.
    staging = tmp_path / "staging"
    staging.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (staging / name).write_text(f"{name}\n")
    staging.rename(inbox)
    assert wait_until(lambda: len(records) >= 2, 30)
    (tmp_path / "d.txt").write_text("d.txt\n")
    (tmp_path / "d.txt").rename(inbox / "d.txt")
    assert wait_until(lambda: len(records) >= 3, 30)
    ssc.stop(stop_engine=False, graceful=True, timeout=10)
    assert sorted(records) == ["a.txt", "c.txt", "d.txt"]
    assert not any(b.failed for b in ssc.batches)
    (entry,) = context_status(ssc, "test")["inputs"]
    assert (entry["files_selected"], entry["files_missing"], entry["problem"]) == (4, 1, None)


def test_a_socket_record_over_the_maximum_is_dropped_and_counted(cluster: Cluster) -> None:
    lines = [f"line {i}" for i in range(200)]
    payload = ("\n".join(lines[:100]) + "\n").encode()
    payload += b"y" * (3 << 20) + b"\n"
    payload += ("\n".join(lines[100:]) + "\n").encode()
    ssc = StreamingContext(0.2, engine=cluster.engine)
    records: list[str] = []
    with serving(payload, 65536) as port:
        stream = ssc.socket_text_stream("127.0.0.1", port, max_record_bytes=1 << 20)
        stream.foreach_rdd(collect_into(records))
        ssc.start()

        def dropped() -> int:
            (receiver,) = context_status(ssc, "test")["receivers"]
            return receiver["bad_records"].get("too_long", 0)  # type: ignore[no-any-return]

        assert wait_until(lambda: len(records) >= len(lines) and dropped() == 1, 30)
        ssc.stop(stop_engine=False, graceful=True, timeout=10)
    assert records == lines


def test_the_socket_receiver_counts_records_too_long_or_not_utf8() -> None:
    """The receiver under its executor-side supervisor, in this process, on a real socket."""
    server = socket.create_server(("127.0.0.1", 0))
    payload = b"ok 1\r\nnot \xff utf-8\n" + b"z" * 5000 + b"\nok 2\n"

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            for start in range(0, len(payload), 333):
                conn.sendall(payload[start : start + 333])

    threading.Thread(target=serve, daemon=True).start()
    sent: list[ToDriver] = []

    def to_driver(message: ToDriver) -> None:
        """A fake driver: it records every block at once."""
        sent.append(message)
        if isinstance(message, BlockAdded):
            supervisor.block_recorded(BlockRecorded(message.stream_id, message.block_id, True))

    blocks = BlockManager()
    receiver = SocketTextReceiver("127.0.0.1", server.getsockname()[1], max_record_bytes=1000)
    supervisor = ReceiverSupervisor(
        3, receiver, "exec-1", blocks, to_driver, 0.05, lambda b, blob: None, restart_delay=60
    )
    supervisor.start()

    def stored() -> list[str]:
        added = [m for m in list(sent) if isinstance(m, BlockAdded)]
        return [r for m in added for r in deserialise(blocks.get(m.block_id) or b"")]

    assert wait_until(lambda: len(stored()) == 3, 10)
    supervisor.stop()
    server.close()
    assert stored() == ["ok 1", "not \ufffd utf-8", "ok 2"]
    bad = {m.reason: m.records for m in sent if isinstance(m, BadRecords)}
    assert bad == {"undecodable": 1, "too_long": 1}
