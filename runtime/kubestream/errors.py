"""Exceptions the engine raises to users and between its layers."""

from __future__ import annotations

USER_CODE_ERRORS: tuple[type[BaseException], ...] = (BaseException,)
"""What user code may raise and still only fail its task, batch, receiver or listener call,
never the thread running it: `sys.exit()` or `raise KeyboardInterrupt` in a map function is
a failed task, not a dead executor thread. Every place that calls user code catches these."""


class KubestreamError(Exception):
    """Base of every error kubestream raises on purpose."""


class ConfigError(KubestreamError, ValueError):
    """A user mistake (a parameter, a stream graph, a command line): shown as one line.

    Every check of a user's input raises this, so `kubestream run` prints it as
    `kubestream: error: ...` without a traceback. It is also a ValueError, as
    PySpark's argument errors are, so code ported from PySpark that catches
    ValueError (an invalid window, say) still catches it.
    """


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


def describe_error(exc: BaseException) -> str:
    """One line for a batch's errors: "Type: message", or the message of kubestream's own
    errors (a JobFailedError's carries the user's traceback from the executor)."""
    if isinstance(exc, KubestreamError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def require(ok: object, name: str, value: object, expected: str) -> None:
    """Raise ConfigError "`name` must be `expected`, got `value`" unless `ok` is true.

    The one check behind every user-facing parameter, so each message names the
    parameter and the value the user passed, as PySpark's do.
    """
    if not ok:
        raise ConfigError(f"{name} must be {expected}, got {value!r}")


def require_count(name: str, value: object, minimum: int = 1, *, optional: bool = False) -> None:
    """Require an int (not a bool) of at least `minimum`, or None when `optional`."""
    if optional and value is None:
        return
    require(
        isinstance(value, int) and not isinstance(value, bool) and value >= minimum,
        name,
        value,
        f"a whole number of at least {minimum}" + (" or None" if optional else ""),
    )


class CheckpointWriteError(KubestreamError):
    """A checkpoint file could not be written: the message names it and the cause."""
