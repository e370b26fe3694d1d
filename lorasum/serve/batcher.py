"""Micro-batching: concurrent requests wait a few milliseconds and run as one batch.

One worker thread owns the model (PyTorch inference is not shared between threads here);
requests hand it work through a queue and wait on a ``concurrent.futures.Future``. The
worker takes the first waiting request, collects more for at most ``wait_s`` or until
``max_batch_size`` texts, then runs one batch per distinct decoding setting: adapters mix
inside a batch, decoding settings never do. A request whose caller gave up (its future
was cancelled) is skipped.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class Job:
    """One request: its texts, each text's adapter and language, its decoding settings."""

    texts: list[str]
    adapters: list[str]
    langs: list[str]
    decoding: object
    future: Future = field(default_factory=Future)


class MicroBatcher:
    """Runs ``run(texts, adapters, decoding, langs) -> summaries`` on batches of queued jobs."""

    def __init__(self, run, *, max_batch_size: int = 16, wait_s: float = 0.01):
        self.run, self.max_batch_size, self.wait_s = run, max_batch_size, wait_s
        self.queue: queue.Queue[Job] = queue.Queue()
        self.batches_run = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lorasum-model", daemon=True)

    def start(self) -> "MicroBatcher":
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def submit(self, job: Job) -> Future:
        self.queue.put(job)
        return job.future

    def _collect(self) -> list[Job]:
        try:
            jobs = [self.queue.get(timeout=0.1)]
        except queue.Empty:
            return []
        size = len(jobs[0].texts)
        deadline = time.monotonic() + self.wait_s
        while size < self.max_batch_size:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                job = self.queue.get(timeout=left)
            except queue.Empty:
                break
            jobs.append(job)
            size += len(job.texts)
        return jobs

    def _loop(self) -> None:
        while not self._stop.is_set():
            jobs = [j for j in self._collect() if j.future.set_running_or_notify_cancel()]
            groups: dict[object, list[Job]] = {}
            for job in jobs:
                groups.setdefault(job.decoding, []).append(job)
            for decoding, group in groups.items():
                self._run_group(decoding, group)

    def _run_group(self, decoding, group: list[Job]) -> None:
        texts = [t for j in group for t in j.texts]
        adapters = [a for j in group for a in j.adapters]
        langs = [x for j in group for x in j.langs]
        try:
            outs: list[str] = []
            for i in range(0, len(texts), self.max_batch_size):  # one request may hold more texts than a batch
                sl = slice(i, i + self.max_batch_size)
                outs += self.run(texts[sl], adapters[sl], decoding, langs[sl])
                self.batches_run += 1
        except Exception as err:  # the worker must survive a failing batch; its callers get the error
            log.exception("batch failed")
            for j in group:
                j.future.set_exception(err)
            return
        start = 0
        for j in group:
            j.future.set_result(outs[start:start + len(j.texts)])
            start += len(j.texts)
