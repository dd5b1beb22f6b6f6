"""A bounded queue in front of the model workers, with optional batching: how ``tfstyle serve``
takes a burst of clients (as TF Serving's batching queue does).

Contract (everything but the model calls runs on the event loop, so there are no locks):

* At most ``max_concurrent`` model calls run at once, in a thread pool off the event loop.
* At most ``max_concurrent + max_queued`` predictions are admitted at once (running, waiting for a
  worker, having their body parsed or their model loaded). One more is refused at once with 429
  and a ``Retry-After`` estimate (``Overloaded``).
* An admitted prediction that has not started ``timeout`` seconds after its admission leaves the
  queue with 503 and a ``Retry-After`` estimate: the client learns that the server is behind
  instead of waiting without end.
* First in, first out. With ``Batching``, the oldest waiting prediction takes along later waiting
  ones for the same servable, signature, and input shapes and dtypes apart from the batch
  dimension, up to ``max_batch_size`` rows, and they run as one model call (TF Serving's
  ``--enable_batching``: ``max_batch_size``, ``batch_timeout_micros``). When fewer rows are waiting,
  a free worker waits up to ``batch_timeout`` seconds from the oldest one's arrival for more. Inputs
  without a batch dimension (a multi-style network's ``style_weights``) are never batched. A
  failed batch is run again one prediction at a time, so a bad image fails only its own request.
"""

import asyncio
import collections
import contextlib
import math
import time
from dataclasses import dataclass, field

from tfstyle.rest_json import RequestError


class Overloaded(RequestError):
    """429 (queue full) or 503 (deadline passed); ``retry_after``: whole seconds for the header."""

    def __init__(self, status, message, retry_after):
        super().__init__(status, message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Batching:
    max_batch_size: int = 8  # rows (images) per model call
    batch_timeout: float = 0.0  # seconds a free worker waits for a batch to fill


@dataclass(eq=False)
class Job:
    """One prediction: ``finish(outputs)`` (run on the worker thread) makes its result from its
    model outputs; ``started`` is done when a worker takes it, ``result`` when it is answered."""

    servable: object
    signature: str
    arrays: dict
    finish: object
    key: object  # the batch it may join (None: runs alone)
    rows: int
    queued_at: float
    started: asyncio.Future = field(default=None)
    result: asyncio.Future = field(default=None)


def batch_key(servable, signature, arrays):
    """(key, rows): requests with equal keys can be concatenated on their first dimension.

    The key is None (and rows 1) when some input has no batch dimension in the signature
    (``servable.inputs``) or the inputs disagree on their number of rows.
    """
    specs = servable.inputs[signature]
    rows = {arrays[name].shape[0] if arrays[name].ndim else None for name in arrays}
    if len(rows) != 1 or None in rows or any(not spec.shape or spec.shape[0] is not None for spec in specs.values()):
        return None, 1
    shapes = tuple(sorted((name, a.dtype.str, a.shape[1:]) for name, a in arrays.items()))
    return (id(servable), signature, shapes), rows.pop()


class PredictQueue:
    """``run(servable, signature, arrays) -> {output: array}`` (a model call, on a worker thread) behind
    the bounded queue described above. ``observe(waits, rows)`` is told of each model call as it
    starts: the seconds each of its predictions waited, and its number of rows."""

    def __init__(self, run, pool, max_concurrent, max_queued, timeout, batching=None, observe=None):
        self.run, self.pool = run, pool
        self.max_concurrent, self.max_queued, self.timeout = max_concurrent, max_queued, timeout
        self.batching = batching
        self.observe = observe or (lambda waits, rows: None)
        self.waiting = collections.deque()  # Jobs, oldest first
        self.admitted = 0  # predictions between admission and answer
        self.running = 0  # model calls in progress
        self.seconds_per_call = 0.1  # a running mean, for Retry-After
        self.batch_timer = None

    def retry_after(self):
        """Whole seconds until a slot is likely free: the waiting calls shared out among the workers."""
        return max(1, math.ceil(self.seconds_per_call * (len(self.waiting) + 1) / self.max_concurrent))

    @contextlib.contextmanager
    def admission(self):
        """Admits one prediction for the ``with`` block and yields its deadline (``time.monotonic``);
        raises ``Overloaded`` 429 when ``max_concurrent + max_queued`` are already admitted."""
        if self.admitted >= self.max_concurrent + self.max_queued:
            raise Overloaded(429, f"server busy: {self.running} model calls running and {len(self.waiting)} "
                                  f"predictions waiting (--max_concurrent={self.max_concurrent}, "
                                  f"--max_queued={self.max_queued}); retry later", self.retry_after())
        self.admitted += 1
        try:
            yield time.monotonic() + self.timeout
        finally:
            self.admitted -= 1

    def deadline_passed(self, what):
        """``Overloaded`` 503: ``what`` did not happen within the deadline."""
        return Overloaded(503, f"deadline passed: {what} within --queue_timeout_seconds={self.timeout:g}; "
                               "retry later", self.retry_after())

    async def predict(self, servable, signature, arrays, finish, deadline):
        """``finish(outputs)`` of this prediction once a worker has run it (raises what they raise);
        ``Overloaded`` 503 when no worker took it before ``deadline``."""
        loop = asyncio.get_running_loop()
        key, rows = batch_key(servable, signature, arrays)
        key = key if self.batching else None
        job = Job(servable, signature, arrays, finish, key, rows, time.monotonic(), loop.create_future(),
                  loop.create_future())
        self.waiting.append(job)
        self.dispatch()
        try:
            await asyncio.wait_for(job.started, max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            raise self.deadline_passed(f"no worker was free ({self.running} running, "
                                       f"{len(self.waiting)} waiting)") from None
        finally:
            if job.started.cancelled():  # timed out, or the handler was cancelled: never run it
                with contextlib.suppress(ValueError):
                    self.waiting.remove(job)
        return await job.result

    def dispatch(self):
        """Starts waiting jobs on free workers, oldest first (called on every arrival and completion)."""
        while self.running < self.max_concurrent:
            while self.waiting and self.waiting[0].started.done():  # given up while this was pending
                self.waiting.popleft()
            batch = self.take_batch() if self.waiting else None
            if batch is None:
                return
            self.running += 1
            now = time.monotonic()
            for job in batch:
                self.waiting.remove(job)
                job.started.set_result(None)
            self.observe([now - job.queued_at for job in batch], sum(job.rows for job in batch))
            future = asyncio.get_running_loop().run_in_executor(self.pool, self.execute, batch)
            future.add_done_callback(lambda f, batch=batch, now=now: self.finished(batch, f, now))

    def take_batch(self):
        """The oldest job and the waiting jobs that can join it; None to wait for the batch to fill."""
        first = self.waiting[0]
        if first.key is None:
            return [first]
        batch, rows = [], 0
        for job in self.waiting:
            if job.key == first.key and not job.started.done() and rows + job.rows <= self.batching.max_batch_size:
                batch.append(job)
                rows += job.rows
        wait = first.queued_at + self.batching.batch_timeout - time.monotonic()
        if rows < self.batching.max_batch_size and wait > 0:
            if self.batch_timer is None:
                self.batch_timer = asyncio.get_running_loop().call_later(wait, self.batch_timeout_passed)
            return None
        return batch or [first]

    def batch_timeout_passed(self):
        self.batch_timer = None
        self.dispatch()

    def finished(self, batch, future, started_at):
        self.running -= 1
        self.seconds_per_call = 0.8 * self.seconds_per_call + 0.2 * (time.monotonic() - started_at)
        results = future.result()  # ``execute`` catches everything
        for job, (ok, value) in zip(batch, results):
            if not job.result.done():
                job.result.set_result(value) if ok else job.result.set_exception(value)
        self.dispatch()

    def execute(self, batch):
        """On a worker thread: [(True, finish(outputs)) or (False, exception)], one per job."""
        if len(batch) > 1:
            try:
                outputs = self.run(batch[0].servable, batch[0].signature, concatenate([j.arrays for j in batch]))
                parts = split(outputs, [job.rows for job in batch])
            except Exception:  # a bad input spoils the whole call: run each alone, so only its own request fails
                parts = None
            if parts is not None:
                return [self.settle(job, lambda part=part: part) for job, part in zip(batch, parts)]
        return [self.settle(job, lambda job=job: self.run(job.servable, job.signature, job.arrays)) for job in batch]

    @staticmethod
    def settle(job, outputs):
        try:
            return True, job.finish(outputs())
        except Exception as e:
            return False, e


def concatenate(arrays_list):
    import numpy as np

    return {name: np.concatenate([arrays[name] for arrays in arrays_list]) for name in arrays_list[0]}


def split(outputs, rows):
    """Per-job outputs of a batched call, or None when an output lacks the batch dimension."""
    total, bounds = sum(rows), [0]
    if any(v.ndim == 0 or v.shape[0] != total for v in outputs.values()):
        return None
    for n in rows:
        bounds.append(bounds[-1] + n)
    return [{name: v[a:b] for name, v in outputs.items()} for a, b in zip(bounds, bounds[1:])]
