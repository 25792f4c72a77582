"""Exceptions the engine raises to users and between its layers."""

from __future__ import annotations

USER_CODE_ERRORS: tuple[type[BaseException], ...] = (BaseException,)
"""What user code may raise and still only fail its task, batch, receiver or listener call,
never the thread running it: `sys.exit()` or `raise KeyboardInterrupt` in a map function is
a failed task, not a dead executor thread. Every place that calls user code catches these."""


class KubestreamError(Exception):
    """Base of every error kubestream raises on purpose."""


class ConfigError(KubestreamError):
    """A user mistake in configuration or command line: shown as one line, no traceback."""


class JobFailedError(KubestreamError):
    """A job failed after its retries; the message carries the user's traceback."""


class FetchFailedError(KubestreamError):
    """A shuffle block could not be read from the executor that wrote it."""

    def __init__(self, shuffle_id: int, map_index: int, executor_id: str, reason: str) -> None:
        super().__init__(
            f"shuffle {shuffle_id} map {map_index} on executor {executor_id}: {reason}"
        )
        self.shuffle_id = shuffle_id
        self.map_index = map_index
        self.executor_id = executor_id


class BlockLostError(KubestreamError):
    """An input block is held by no live executor, so its records cannot be recomputed."""
