"""The bounded section for heavy request work: large JSON bodies and image uploads.

A request holds one of ``slots`` places from the moment it starts reading its body until its response is
built (parse, every validation walk, the upload's header check and storage), so at most ``slots`` of them
cost memory and CPU at once. At most ``waiting`` more wait for a place; beyond that, and after waiting
``wait_s`` seconds, the request is answered 503 with ``Retry-After`` instead. With the default 8 HTTP
threads, 2 slots and 4 waiting leave 2 threads that heavy requests can never occupy, so ``/v1/health`` and
small requests keep answering (they never enter the gate).
"""

from __future__ import annotations

import threading

from flask import g

from hubseg_server.errors import ApiError

DEFAULT_SLOTS = 2
DEFAULT_WAITING = 4
DEFAULT_WAIT_S = 60.0


class RequestGate:
    """``slots`` heavy requests at once, ``waiting`` more queued; see the module docstring."""

    def __init__(self, slots: int = DEFAULT_SLOTS, waiting: int = DEFAULT_WAITING, wait_s: float = DEFAULT_WAIT_S):
        self.slots, self.waiting, self.wait_s = int(slots), int(waiting), float(wait_s)
        self._semaphore = threading.BoundedSemaphore(self.slots)
        self._lock = threading.Lock()
        self._queued = 0

    def acquire(self, what: str) -> None:
        """Take a place or raise 503 (too many waiting, or none free within ``wait_s``)."""
        if self._semaphore.acquire(blocking=False):
            return
        with self._lock:
            if self._queued >= self.waiting:
                raise self._busy(what)
            self._queued += 1
        try:
            if not self._semaphore.acquire(timeout=self.wait_s):
                raise self._busy(what)
        finally:
            with self._lock:
                self._queued -= 1

    def release(self) -> None:
        self._semaphore.release()

    def _busy(self, what: str) -> ApiError:
        return ApiError(
            503, "unavailable",
            f"the server is busy with other large requests ({self.slots} at a time, {self.waiting} waiting); "
            f"send the {what} again in a few seconds",
            headers={"Retry-After": "2"},
        )


def hold(gate: RequestGate | None, what: str) -> None:
    """Hold a place in ``gate`` until the end of the current request (released by :func:`release_held`)."""
    if gate is None or getattr(g, "hubseg_gate", None) is not None:
        return
    gate.acquire(what)
    g.hubseg_gate = gate


def release_held(_exc=None) -> None:
    """``teardown_request`` hook: give back the place :func:`hold` took, if any."""
    gate = g.pop("hubseg_gate", None)
    if gate is not None:
        gate.release()
