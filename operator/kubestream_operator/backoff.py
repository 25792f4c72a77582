"""Exponential backoff between driver restarts, as a pure function."""


def restart_delay(failures: int, base_seconds: int, max_seconds: int) -> int:
    """Seconds to wait before restart number ``failures`` (1 = first restart).

    Doubles with every consecutive failure: base, 2*base, 4*base, ... capped at
    max_seconds, the way a kubelet backs off a crash-looping container.
    """
    if failures < 1:
        return 0
    return min(max_seconds, base_seconds << min(failures - 1, 30))
