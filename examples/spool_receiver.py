"""A reliable receiver: message files from a spool directory, deleted only once stored.

    kubestream run examples/spool_receiver.py --checkpoint /tmp/ckpt --write-ahead-log \\
        -- --spool /tmp/spool --out /tmp/out

Each file in the spool is one message batch. The receiver stores a file's lines
with store_block(), which returns once they are in the write-ahead log and the
driver recorded them, and only then deletes the file: a crash of the driver or an
executor loses no message (a message may be seen twice if the crash falls between
the two steps). When the driver does not confirm a block (BlockNotRecordedError:
it is restarting), the file stays and is stored again later.
"""

from __future__ import annotations

import argparse
import os
import threading
import time

from kubestream import BlockNotRecordedError, Receiver, StreamingContext


class SpoolReceiver(Receiver):
    def __init__(self, spool: str) -> None:
        self.spool = spool

    def on_start(self) -> None:
        self._thread = threading.Thread(target=self._drain, name="spool", daemon=True)
        self._thread.start()

    def on_stop(self) -> None:
        # Return only once no file is being stored: the replacement may start right after.
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=30)

    def _drain(self) -> None:
        while not self.is_stopped():
            names = sorted(n for n in os.listdir(self.spool) if not n.startswith("."))
            for name in names:
                path = os.path.join(self.spool, name)
                with open(path, encoding="utf-8") as f:
                    lines = f.read().splitlines()
                try:
                    self.store_block(lines)
                except BlockNotRecordedError as exc:
                    self.report_error("a spool file stays for the next try", exc)
                    break
                os.unlink(path)
            time.sleep(0.05)


def build(ssc: StreamingContext, args: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="spool_receiver")
    parser.add_argument("--spool", required=True, help="directory of message files")
    parser.add_argument("--out", required=True, help="directory for per-batch outputs")
    options = parser.parse_args(args)
    messages = ssc.receiver_stream(SpoolReceiver(options.spool))
    messages.save_as_text_files(os.path.join(options.out, "messages"))
