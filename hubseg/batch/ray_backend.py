"""Ray execution: one actor per worker (model loaded once in its constructor), one slide per actor call.

Ray places each actor where its resources fit (``num_gpus=1`` → a GPU somewhere in the cluster). A worker
process that dies is restarted by Ray (``max_restarts``) and its slide retried (``max_task_retries``);
after the retries the slide becomes a ``failed`` row and the batch goes on.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Iterator

from hubseg.batch.inputs import BatchItem
from hubseg.batch.summary import failed_row
from hubseg.batch.worker import BatchConfig
from hubseg.errors import DependencyMissingError, HubsegError, InvalidInputError


def import_ray():
    try:
        import ray
    except ImportError:
        raise DependencyMissingError("Ray is not installed: `pip install 'hubseg[batch]'` (or drop --ray to use a local process pool)") from None
    return ray


def connect(address: str) -> bool:
    """``ray.init`` for ``--ray local|auto|ADDRESS``; returns True when this call started the connection
    (so the caller shuts it down), False when Ray was already initialised in this process."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    kwargs = dict(logging_level=logging.WARNING, log_to_driver=False)
    try:
        if address == "local":
            ray.init(**kwargs)
        else:
            ray.init(address=address, **kwargs)
    except ConnectionError as error:
        raise InvalidInputError(
            f"cannot reach a Ray cluster at {address!r} ({error}); start one with `ray start --head` or use --ray local"
        ) from None
    return True


def cluster_gpus() -> int:
    return int(import_ray().cluster_resources().get("GPU", 0))


class _SlideActor:
    """Ray actor body (wrapped with ``ray.remote`` at run time so importing this module never needs Ray)."""

    def __init__(self, config: BatchConfig, device: str, torch_threads: int | None):
        from hubseg.batch.worker import SlideProcessor

        self.processor = SlideProcessor(config, device=device, torch_threads=torch_threads)

    def pid(self) -> tuple[str, int]:
        """(node IP, process id): where this actor runs."""
        import os

        import ray

        return ray.util.get_node_ip_address(), os.getpid()

    def process(self, item: BatchItem) -> dict:
        import os

        row = self.processor.process(item)
        row["worker_pid"] = os.getpid()
        return row


class RayBackend:
    """``results(items)`` yields ``(index, row)`` as slides finish; closing the generator cancels and kills actors."""

    name = "ray"

    def __init__(self, config: BatchConfig, workers: int = 1, gpus_per_worker: float = 0, cpus_per_worker: float = 1,
                 device: str = "auto", max_retries: int = 2):
        self.config = config
        self.workers = max(1, int(workers))
        self.gpus_per_worker = float(gpus_per_worker)
        self.cpus_per_worker = float(cpus_per_worker)
        self.device = device if device != "auto" else ("cuda" if self.gpus_per_worker > 0 else "cpu")
        self.max_retries = int(max_retries)
        self.actors: list = []
        self._where: list[tuple[str, int]] = []

    def _start_actors(self) -> None:
        ray = import_ray()
        actor_class = ray.remote(_SlideActor).options(
            num_cpus=self.cpus_per_worker, num_gpus=self.gpus_per_worker,
            max_restarts=self.max_retries, max_task_retries=self.max_retries,
            max_concurrency=2,  # pid() answers while a slide runs; the driver sends one slide at a time
        )
        threads = max(1, int(self.cpus_per_worker))
        self.actors = [actor_class.remote(self.config, self.device, threads) for _ in range(self.workers)]
        try:  # surface a model that cannot load (or a missing GPU) as one error, before any slide is sent
            self._where = ray.get([actor.pid.remote() for actor in self.actors])
        except ray.exceptions.RayError as error:
            cause = getattr(error, "cause", None) or error
            while getattr(cause, "cause", None) is not None and cause is not cause.cause:
                cause = cause.cause
            if isinstance(cause, HubsegError):
                raise type(cause)(str(cause)) from None
            raise InvalidInputError(f"Ray workers could not start: {' '.join(str(cause).split())[:300]}") from None

    def pids(self) -> list[int]:
        """Process ids of the actors (for tests and benchmarks)."""
        ray = import_ray()
        return [pid for _, pid in ray.get([actor.pid.remote() for actor in self.actors])]

    def _stop(self, inflight=()) -> None:
        """Kill the actors and wait (≤ 30 s) until they are gone, so no slide is still writing after we return."""
        import os
        import time

        ray = import_ray()
        try:  # restarted actors have new processes
            self._where = ray.get([actor.pid.remote() for actor in self.actors], timeout=5)
        except Exception:
            pass
        try:
            here = ray.util.get_node_ip_address()
            local = [pid for ip, pid in self._where if ip == here]
        except Exception:
            local = []
        for actor in self.actors:
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # already dead
                pass
        self.actors = []
        if inflight:  # each in-flight call ends (with an error) once Ray knows its actor is dead
            ray.wait(list(inflight), num_returns=len(inflight), timeout=30)
        deadline = time.monotonic() + 30
        for pid in local:
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except OSError:
                    break
                time.sleep(0.05)

    def results(self, items: list[BatchItem]) -> Iterator[tuple[int, dict]]:
        ray = import_ray()
        self._start_actors()
        pending = deque(enumerate(items))
        idle = deque(self.actors)
        inflight: dict = {}
        try:
            while pending or inflight:
                while pending and idle:
                    index, item = pending.popleft()
                    actor = idle.popleft()
                    inflight[actor.process.remote(item)] = (index, item, actor)
                ready, _ = ray.wait(list(inflight), num_returns=1)
                for ref in ready:
                    index, item, actor = inflight.pop(ref)
                    try:
                        row = ray.get(ref)
                    except ray.exceptions.RayActorError:  # died more often than max_restarts allows
                        row = failed_row(item, self.config, f"the Ray worker died {self.max_retries + 1} times while "
                                         "processing this slide (killed, out of memory, or a crashing image reader)")
                        actor = None
                    except ray.exceptions.RayTaskError as error:
                        row = failed_row(item, self.config, " ".join(str(error.cause or error).split())[:500])
                    except ray.exceptions.RayError as error:  # e.g. Ray's memory monitor killed the task
                        row = failed_row(item, self.config, f"{type(error).__name__}: {' '.join(str(error).split())[:300]}")
                    if actor is not None:
                        idle.append(actor)
                    elif not idle and not inflight and pending:  # every actor is gone: start fresh ones
                        self._stop()
                        self._start_actors()
                        idle.extend(self.actors)
                    yield index, row
        finally:
            for ref in list(inflight):
                try:
                    ray.cancel(ref)
                except Exception:  # killing the actor below stops it anyway
                    pass
            self._stop(inflight)
