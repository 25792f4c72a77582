"""A reliable source for the tests: numbered records in files of a spool directory."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from kubestream import BlockNotRecordedError, Receiver


class SpoolReceiver(Receiver):
    """A file leaves the spool only after its records are stored, so a receiver that is
    stopped or moved resumes where it left off and the backlog stays in the spool."""

    def __init__(self, spool: str) -> None:
        self.spool = spool

    def on_start(self) -> None:
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def on_stop(self) -> None:
        # Return only once no file is being stored: the replacement may start right after.
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=30)

    def _drain(self) -> None:
        while not self.is_stopped():
            for name in sorted(n for n in os.listdir(self.spool) if not n.startswith(".")):
                if self.is_stopped():
                    return
                path = os.path.join(self.spool, name)
                with open(path, encoding="utf-8") as f:
                    records = [int(line) for line in f.read().split()]
                try:
                    self.store_block(records)
                except BlockNotRecordedError:
                    break  # the driver did not confirm: the file stays for the next pass
                os.unlink(path)
            time.sleep(0.01)


def write_records(spool: Path, first: int, count: int) -> None:
    """Records first..first+count-1 as one file, renamed in so the receiver never sees half."""
    staged = spool / f".f{first:08d}"
    staged.write_text("\n".join(map(str, range(first, first + count))))
    staged.rename(spool / f"f{first:08d}")
