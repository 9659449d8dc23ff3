"""Local execution without Ray: a pool of ``workers`` processes, each loading the model once.

At most one slide per worker is in flight, so the slides a dead worker took down are known: when a worker
process dies (killed, out of memory, a crashing reader) the pool is rebuilt and those slides are retried,
up to ``max_retries`` times each, before they become ``failed`` rows.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Iterator

from hubseg.batch.inputs import BatchItem
from hubseg.batch.summary import failed_row, remove_temp_files
from hubseg.batch.worker import BatchConfig

_PROCESSOR = None  # the per-process SlideProcessor (set in each pool process, never in the driver)


def _init_worker(config: BatchConfig, devices, torch_threads: int | None) -> None:
    global _PROCESSOR
    import signal

    from hubseg.batch.worker import SlideProcessor

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's: it stops the workers itself
    try:
        device = devices.get_nowait()
    except Exception:  # more processes than devices (a rebuilt pool): share the first kind
        device = "auto"
    _PROCESSOR = (config, device, torch_threads, SlideProcessor)


def _process(item: BatchItem) -> dict:
    global _PROCESSOR
    if isinstance(_PROCESSOR, tuple):  # load lazily so a model error reaches the driver as an exception
        config, device, threads, factory = _PROCESSOR
        _PROCESSOR = factory(config, device=device, torch_threads=threads)
    row = _PROCESSOR.process(item)
    row["worker_pid"] = os.getpid()
    return row


def pool_context():
    """forkserver where available: workers (and a pool rebuilt after a worker died) fork from a clean
    server that already imported torch and hubseg, instead of paying the imports each time (spawn).
    Never plain fork: the driver may hold threads."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["torch", "hubseg.batch.worker", "hubseg.pipeline"])
        return context
    return multiprocessing.get_context("spawn")


class LocalPool:
    """``results(items)`` yields ``(index, row)`` as slides finish; closing the generator kills the workers."""

    name = "local"

    def __init__(self, config: BatchConfig, workers: int = 1, devices: list[str] | None = None,
                 torch_threads: int | None = None, max_retries: int = 2):
        self.config = config
        self.workers = max(1, int(workers))
        self.devices = list(devices or ["auto"])
        self.torch_threads = torch_threads or max(1, (os.cpu_count() or 1) // self.workers)
        self.max_retries = int(max_retries)
        self._executor: ProcessPoolExecutor | None = None
        self.worker_pids: list[int] = []

    def _start(self) -> ProcessPoolExecutor:
        context = pool_context()
        devices = context.Queue()
        for index in range(self.workers):
            devices.put(self.devices[index % len(self.devices)])
        executor = ProcessPoolExecutor(
            max_workers=self.workers, mp_context=context, initializer=_init_worker,
            initargs=(self.config, devices, self.torch_threads),
        )
        self._executor = executor
        return executor

    def pids(self) -> list[int]:
        """Current worker process ids (for tests and benchmarks)."""
        processes = getattr(self._executor, "_processes", None) or {}
        return [p.pid for p in list(processes.values()) if p.pid]

    def _stop(self, kill: bool) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        if kill:  # Ctrl-C / error: do not wait for running slides
            for process in list((getattr(executor, "_processes", None) or {}).values()):
                if process.is_alive():
                    process.kill()
        executor.shutdown(wait=True, cancel_futures=True)

    def results(self, items: list[BatchItem]) -> Iterator[tuple[int, dict]]:
        pending = deque(enumerate(items))
        attempts: dict[int, int] = {}
        inflight: dict = {}
        executor = self._start()
        finished = False
        try:
            while pending or inflight:
                while pending and len(inflight) < self.workers:
                    index, item = pending.popleft()
                    inflight[executor.submit(_process, item)] = (index, item)
                done, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
                broken = False
                for future in done:
                    index, item = inflight[future]
                    try:
                        row = future.result()
                    except BrokenProcessPool:
                        broken = True
                        continue
                    del inflight[future]
                    yield index, row
                if broken:  # a worker died: every slide still in flight went down with the pool
                    lost = sorted(inflight.values(), key=lambda pair: pair[0])
                    inflight.clear()
                    self._stop(kill=True)
                    for index, item in reversed(lost):
                        remove_temp_files(self.config.out_dir, item.stem)  # a write the kill interrupted
                        attempts[index] = attempts.get(index, 0) + 1
                        if attempts[index] > self.max_retries:
                            yield index, failed_row(
                                item, self.config,
                                f"a worker process died {attempts[index]} times while processing this slide "
                                "(killed, out of memory, or a crashing image reader)",
                            )
                        else:
                            pending.appendleft((index, item))
                    executor = self._start()
            finished = True
        finally:
            self._stop(kill=not finished)
