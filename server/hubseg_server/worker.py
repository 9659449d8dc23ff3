"""The job worker: one thread per device, FIFO; detection and training share it.

Jobs live in the store (SQLite); the in-memory queue holds only ids, so a restart re-queues what was
still queued (jobs that were running when the process died are marked failed by the store). Every job is
checked again when it starts (:mod:`hubseg_server.recheck`: paths under the current slides roots after
symlinks, uploads present, tile budget) and fails with the route's error code and message if it no longer
passes; queued jobs are checked once at start-up too, so they fail at once rather than when their turn comes.
Loaded models are cached here (LRU, a few entries) rather than loaded per request. Each job's start,
progress milestones (every 25 %), end and error are logged.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import OrderedDict

from hubseg.errors import Cancelled, HubsegError

from hubseg_server import engine
from hubseg_server.batch_jobs import run_batch_job
from hubseg_server.errors import ApiError
from hubseg_server.housekeeping import release_memory
from hubseg_server.recheck import JobLimits, recheck_request
from hubseg_server.store import Store

log = logging.getLogger("hubseg_server.worker")

PROGRESS_INTERVAL_S = 0.25  # at most ~4 progress writes per second per job
MODEL_CACHE_SIZE = 2


class Worker:
    def __init__(self, store: Store, registry, device, slides_roots=(), max_tiles: int | None = None,
                 max_image_pixels: int | None = None):
        self.slides_roots = tuple(slides_roots)
        self.max_tiles = max_tiles
        self.limits = JobLimits(self.slides_roots, max_tiles, max_image_pixels)
        self.store = store
        self.registry = registry
        self.device = device
        self._queue: "queue.Queue[str | None]" = queue.Queue()
        self._lock = threading.Lock()
        self._cancel_events: dict[str, threading.Event] = {}
        self._models: "OrderedDict[str, object]" = OrderedDict()
        self._thread = threading.Thread(target=self._loop, name=f"hubseg-worker-{device}", daemon=True)
        self.running_job: str | None = None
        self._stopping = threading.Event()

    # --- control -------------------------------------------------------------------------------------
    def start(self) -> None:
        for job_id in self.store.recover_after_restart():
            if self._still_allowed(job_id):
                self._queue.put(job_id)
        self._thread.start()

    def _still_allowed(self, job_id: str) -> bool:
        """A re-queued job must still pass :func:`recheck_request`; otherwise it fails now with the reason."""
        job = self.store.get_job(job_id)
        if job is None:
            return False
        try:
            recheck_request(job, self.store, self.registry, self.limits)
        except HubsegError:  # e.g. its base model is gone: the job fails with that reason when it starts
            return True
        except ApiError as error:
            message = f"not run after the restart: {error.message}"
            self.store.fail_queued(job_id, error.code, message)
            log.warning("job %s failed at start-up: %s", job_id, message)
            return False
        return True

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop after interrupting the running job at its next batch (it ends ``failed``/``server_stopped``);
        a detection already past its tiles is finished and its result written. Queued jobs stay queued."""
        self._stopping.set()
        with self._lock:
            for event in self._cancel_events.values():
                event.set()
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def submit(self, job_id: str) -> None:
        self._queue.put(job_id)

    def cancel(self, job_id: str) -> None:
        """Idempotent: queued jobs are cancelled now, the running one at its next batch."""
        self.store.request_cancel(job_id)
        with self._lock:
            event = self._cancel_events.get(job_id)
        if event is not None:
            event.set()

    # --- the loop ------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None or self._stopping.is_set():
                return
            try:
                self._run_one(job_id)
            except Exception:  # never let the worker thread die
                log.exception("worker: unexpected failure around job %s", job_id)

    def _run_one(self, job_id: str) -> None:
        event = threading.Event()
        with self._lock:
            self._cancel_events[job_id] = event
        try:
            if not self.store.mark_running(job_id):
                return  # cancelled (or otherwise finished) while queued
            self.running_job = job_id
            job = self.store.get_job(job_id)
            if job["cancel_requested"]:
                event.set()
            self._execute(job, event)
        finally:
            self.running_job = None
            with self._lock:
                self._cancel_events.pop(job_id, None)
            release_memory()

    def _execute(self, job: dict, event: threading.Event) -> None:
        job_id = job["id"]
        last = [0.0]
        milestone = [0]
        started = time.monotonic()

        def progress(done, total, message="") -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_INTERVAL_S or (total and done >= total):
                last[0] = now
                self.store.set_progress(job_id, max(0, int(done)), max(0, int(total)), str(message or ""))
            if total and done * 4 >= (milestone[0] + 1) * total and milestone[0] < 4:
                milestone[0] = min(4, int(done * 4 // total))
                log.info("job %s: %d%% (%s)", job_id, milestone[0] * 25, message or f"{done}/{total}")

        def warn(message: str) -> None:
            self.store.add_warning(job_id, message)
            log.warning("job %s: %s", job_id, message)

        request = json.loads(job["request"])
        log.info("job %s: %s started (model %s%s)", job_id, job["kind"], job["model"],
                 f", image {request['image_path']}" if "image_path" in request else "")
        handler = JOB_HANDLERS.get(job["kind"])
        try:
            # the roots, the files and the limits may have changed while the job waited
            request = recheck_request(job, self.store, self.registry, self.limits)
            if handler is None:
                raise HubsegError(f"unknown job kind {job['kind']!r}; known: {', '.join(JOB_HANDLERS)}")
            handler(self, job, request, progress, event.is_set, warn, started)
        except Cancelled:
            log.info("job %s: %s after %.1f s", job_id,
                     "stopped by the server's shutdown" if self._stopping.is_set() else "cancelled",
                     time.monotonic() - started)
            if self._stopping.is_set() and not self.store.get_job(job_id)["cancel_requested"]:
                self.store.finish_job(
                    job_id, "failed", error_code="server_stopped",
                    error_message="the server was stopped while this job was running; submit it again",
                )
            else:
                self.store.finish_job(job_id, "cancelled", error_code="cancelled", error_message="cancelled by request")
        except ApiError as error:  # the start-time re-check: the same code and message as the route's
            log.warning("job %s: refused at start (%s): %s", job_id, error.code, error.message)
            self.store.finish_job(job_id, "failed", error_code=error.code, error_message=error.message[:2000])
        except HubsegError as error:
            log.warning("job %s: failed (%s): %s", job_id, error.code, error)
            self.store.finish_job(job_id, "failed", error_code=error.code, error_message=str(error)[:2000])
        except MemoryError:
            log.error("job %s: out of memory", job_id)
            self.store.finish_job(
                job_id, "failed", error_code="out_of_memory",
                error_message="out of memory; run detection on a smaller region or lower the batch size",
            )
        except Exception as error:  # a bug or an environment problem: the job fails, the worker lives
            log.exception("job %s failed", job_id)
            self.store.finish_job(
                job_id, "failed", error_code="internal_error",
                error_message=f"unexpected error ({type(error).__name__}: {str(error)[:300]}); see the server log",
            )

    def _run_detection(self, job: dict, request: dict, progress, should_cancel, warn, started: float) -> None:
        job_id = job["id"]
        collection = engine.run_detection(request, self._model(job["model"]), self.store, progress=progress,
                                          should_cancel=should_cancel, max_tiles=self.max_tiles)
        # every tile is done: only a user's cancel discards the result, a server stop does not
        if self.store.get_job(job_id)["cancel_requested"]:
            raise Cancelled("cancelled")
        result_file = self.store.write_result(job_id, collection)
        self.store.finish_job(job_id, "succeeded", result_file=result_file)
        log.info("job %s: succeeded in %.1f s (%d objects)", job_id, time.monotonic() - started,
                 len(collection.get("features", [])))

    def _run_training(self, job: dict, request: dict, progress, should_cancel, warn, started: float) -> None:
        card = engine.run_training(request, self.registry, self.store, self.device, self.slides_roots, progress=progress,
                                   should_cancel=should_cancel, warn=warn,
                                   on_summary=lambda summary: self.store.set_summary(job["id"], summary))
        self.store.finish_job(job["id"], "succeeded", new_model=card.name)
        log.info("job %s: succeeded in %.1f s (new model %s)", job["id"], time.monotonic() - started, card.name)

    def _run_batch(self, job: dict, request: dict, progress, should_cancel, warn, started: float) -> None:
        run_batch_job({**job, "request": json.dumps(request)}, self._model(job["model"]), self.registry,
                      self.store.data_dir, self.slides_roots, progress=progress, should_cancel=should_cancel,
                      max_tiles=self.max_tiles, device=self.device,
                      on_summary=lambda summary: self.store.set_summary(job["id"], summary))
        self.store.finish_job(job["id"], "succeeded")
        log.info("job %s: batch succeeded in %.1f s", job["id"], time.monotonic() - started)

    def _model(self, name: str):
        """Loaded model from the LRU cache (models are immutable once registered, so no invalidation)."""
        with self._lock:
            if name in self._models:
                self._models.move_to_end(name)
                return self._models[name]
        model = self.registry.load(name, device=self.device)
        with self._lock:
            self._models[name] = model
            while len(self._models) > MODEL_CACHE_SIZE:
                self._models.popitem(last=False)
        return model


#: What the worker runs for each job kind (the ``kind`` column of the jobs table).
JOB_HANDLERS = {
    "detection": Worker._run_detection,
    "training": Worker._run_training,
    "batch": Worker._run_batch,
}
