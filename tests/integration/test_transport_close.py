"""A sender racing an endpoint's close is quiet: one that saw the endpoint open just before
it closed must not write to the closed wake pipe (EBADF), or to whatever file reused its
descriptor number."""

from __future__ import annotations

import threading

from kubestream.transport import Client, CurveKeys, generate_keypair


def test_a_sender_that_saw_the_endpoint_open_as_it_closed_raises_nothing() -> None:
    client = Client(CurveKeys(*generate_keypair()), "tcp://127.0.0.1:9", "race", lambda _m: None)
    closed = client._closed
    io_thread = client._thread
    saw_open = threading.Event()

    class HeldAfterTheCheck:
        """The endpoint's closed flag; the sender's first look at it answers before the close,
        then holds the sender until the I/O thread has exited: the race's window, made certain."""

        def is_set(self) -> bool:
            answer = closed.is_set()
            if threading.current_thread().name == "sender" and not saw_open.is_set():
                saw_open.set()
                io_thread.join(10)
            return answer

        def set(self) -> None:
            closed.set()

    client._closed = HeldAfterTheCheck()  # type: ignore[assignment]
    errors: list[BaseException] = []

    def send() -> None:
        try:
            client.send("late")
        except BaseException as exc:
            errors.append(exc)

    sender = threading.Thread(target=send, name="sender")
    sender.start()
    assert saw_open.wait(10)
    client.close()
    sender.join(10)
    assert not io_thread.is_alive()
    assert errors == []
