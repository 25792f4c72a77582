"""Waits for the e2e suite: poll what a user would look at, and on timeout say
what was last seen.

Every wait takes a probe that returns ``(done, seen)``; ``seen`` is whatever a
person debugging the failure would want in the message (a phase, a list of
event reasons, an exception). Tests import these helpers; conftest's fixtures
hand them the API clients.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream


class WaitTimeoutError(AssertionError):
    """A wait ran out of time; the message carries the last thing it saw."""


def wait_for(
    what: str,
    probe: Callable[[], tuple[bool, object]],
    timeout: float = 120.0,
    interval: float = 1.0,
) -> object:
    """Polls ``probe`` until it reports done; returns what it saw then."""
    deadline = time.monotonic() + timeout
    seen: object = "nothing yet"
    while True:
        try:
            done, seen = probe()
        except ApiException as err:
            done, seen = False, f"API error {err.status}: {err.reason}"
        if done:
            return seen
        if time.monotonic() >= deadline:
            raise WaitTimeoutError(
                f"timed out after {timeout:.0f}s waiting for {what}; last seen: {seen}"
            )
        time.sleep(interval)


def field(obj: Any, path: str) -> object:
    """``field(pod, "status.phase")``: a dotted path into a client object or dict."""
    cur: Any = obj.to_dict() if hasattr(obj, "to_dict") else obj
    for part in path.split("."):
        if cur is None:
            return None
        cur = cur[int(part)] if isinstance(cur, list) else cur.get(part)
    return cur


def wait_for_field(
    what: str,
    read: Callable[[], Any],
    path: str,
    expected: object,
    timeout: float = 120.0,
) -> Any:
    """Waits until ``read()``'s field at ``path`` equals ``expected``; returns the object."""
    latest: list[Any] = [None]

    def probe() -> tuple[bool, object]:
        latest[0] = read()
        value = field(latest[0], path)
        return value == expected, f"{path}={value!r}"

    wait_for(f"{what}: {path} == {expected!r}", probe, timeout)
    return latest[0]


def wait_for_event(
    core: client.CoreV1Api,
    namespace: str,
    reason: str,
    involved_name: str | None = None,
    timeout: float = 120.0,
    since: datetime | None = None,
) -> client.CoreV1Event:
    """Waits for an Event with ``reason`` (optionally about one object, or last seen after
    ``since``, for a reason an earlier step already produced)."""
    found: list[client.CoreV1Event] = []

    def probe() -> tuple[bool, object]:
        events = core.list_namespaced_event(namespace).items
        if involved_name is not None:
            events = [e for e in events if e.involved_object.name == involved_name]
        if since is not None:
            events = [e for e in events if (e.last_timestamp or e.event_time or since) >= since]
        found[:] = [e for e in events if e.reason == reason]
        return bool(found), sorted({f"{e.involved_object.name}:{e.reason}" for e in events})

    about = f" about {involved_name}" if involved_name else ""
    wait_for(f"an Event {reason!r}{about} in {namespace}", probe, timeout)
    return found[0]


def pod_exec(
    core: client.CoreV1Api,
    namespace: str,
    pod: str,
    command: list[str],
    timeout: float = 60.0,
    check: bool = True,
) -> str:
    """Runs ``command`` in the pod's first container; returns its stdout.

    With ``check``, fails with the command's stderr when it exits non-zero.
    """
    resp = stream(
        core.connect_get_namespaced_pod_exec,
        pod,
        namespace,
        command=command,
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
        _preload_content=False,
    )
    try:
        resp.run_forever(timeout=timeout)
        out: str = resp.read_stdout(timeout=1) or ""
        err: str = resp.read_stderr(timeout=1) or ""
        code = resp.returncode
    finally:
        resp.close()
        # WSClient.close() skips a socket the server already closed, which
        # leaks it (a ResourceWarning, an error under pytest's settings).
        resp.sock.shutdown()
    if check and code != 0:
        raise AssertionError(f"{command} in {namespace}/{pod} exited {code}: {err or out}")
    return out


def pods_ready(core: client.CoreV1Api, namespace: str, selector: str, count: int) -> list[str]:
    """Waits until ``count`` pods matching ``selector`` are Ready; returns their names."""

    def probe() -> tuple[bool, object]:
        pods = core.list_namespaced_pod(namespace, label_selector=selector).items
        ready = [
            p.metadata.name
            for p in pods
            if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
        ]
        states = {p.metadata.name: p.status.phase for p in pods}
        return len(ready) == count, {"ready": ready, "phases": states}

    seen = wait_for(f"{count} Ready pods with {selector} in {namespace}", probe, timeout=180)
    assert isinstance(seen, dict)
    return sorted(seen["ready"])
