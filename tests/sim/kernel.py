"""Virtual time for the simulation: one clock, callbacks at instants, and jobs that block in virtual time.

The model. One virtual clock serves every replica (a replica's monotonic clock is it plus a fixed offset,
wall time is it plus an epoch). Exactly one piece of code runs at any moment, so a run is a pure function of
its seed. Work is of two kinds:

- a callback (`at`) runs in the scheduler's thread, atomically at its instant; it must not block;
- a job (`spawn`) runs the real code on a pooled thread and may block in virtual time: `sleep(dt)` (the
  Coordinator's sleep, each DynamoDB call's latency and timeouts) and a contended `SimLock` suspend it,
  and the scheduler runs whatever falls due meanwhile: other replicas' rounds, batches, events. So a
  Coordinator round interleaves with everything else exactly at its blocking points (a DynamoDB request
  is applied at one instant between its request and its answer latency) and is atomic in between, as
  if the CPU were infinitely fast. A block that ends before anything else is due only advances the clock.

Every callback and job belongs to an `owner` (a replica): `pause` freezes what it has pending (SIGSTOP:
its suspended jobs stay suspended, its callbacks wait), `resume` thaws it, `kill` drops its callbacks and
unwinds its suspended jobs with `Killed` (kill -9: nothing of it runs again, no `finally` talks to AWS
because any further block raises `Killed` again).

How a job is suspended: on a greenlet when the `greenlet` package is installed (a switch costs about a
microsecond), else on a pooled thread handed a baton (tens of microseconds per switch). Both run exactly
the same interleaving, so a seed replays identically with either.
"""

from __future__ import annotations

import heapq
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

try:
    import greenlet
except ImportError:  # pragma: no cover - the thread baton does the same, slower
    greenlet = None

__all__ = ["Kernel", "Killed", "SimError", "SimLock"]


class Killed(BaseException):
    """Raised inside a job of a killed owner at its blocking point (BaseException: the real code's
    `except Exception` handlers must not swallow a kill -9)."""


class SimError(Exception):
    """The simulation itself was misused (a callback blocked, a job deadlocked the scheduler)."""


@dataclass(eq=False)
class Job:
    owner: str
    name: str
    fn: Callable[[], Any]
    done: Callable[[Any], None] | None = None
    killed: bool = False
    waiting_on: SimLock | None = None
    started: float = 0.0
    worker: _Worker | None = None
    fiber: Any = None  # its greenlet, when greenlets are used
    entry: _Entry | None = None  # its start, until it starts (cancel() drops it)


class _Entry:
    __slots__ = ("callback", "cancelled", "job", "owner", "seq", "time")

    def __init__(
        self, time: float, seq: int, owner: str, callback: Callable[[], None] | None, job: Job | None
    ):
        self.time, self.seq, self.owner = time, seq, owner
        self.callback, self.job, self.cancelled = callback, job, False


def _run_job(kernel: Kernel, job: Job) -> None:
    """A job's body: its function, then its `done`; a failure is recorded, the run then fails."""
    try:
        result = job.fn()
    except Killed:
        return
    except BaseException as exc:  # a bug in the real code or in the simulation
        kernel.errors.append(f"job {job.name} of {job.owner}: {exc!r}")
        kernel.error_objects.append(exc)
        return
    if job.done is not None and not job.killed:
        try:
            job.done(result)
        except BaseException as exc:
            kernel.errors.append(f"after job {job.name} of {job.owner}: {exc!r}")
            kernel.error_objects.append(exc)


class _Worker:
    """A pooled thread that runs one job at a time when the kernel hands it the baton."""

    def __init__(self) -> None:
        self.go = threading.Lock()
        self.go.acquire()
        self.job: Job | None = None
        self.kernel: Kernel | None = None
        threading.Thread(target=self._loop, name="sim-worker", daemon=True).start()

    def _loop(self) -> None:
        while True:
            self.go.acquire()
            job, kernel = self.job, self.kernel
            assert job is not None and kernel is not None
            _run_job(kernel, job)
            kernel._finished(job, self)


_POOL: list[_Worker] = []
_POOL_LOCK = threading.Lock()


def _worker() -> _Worker:
    with _POOL_LOCK:
        return _POOL.pop() if _POOL else _Worker()


class Kernel:
    def __init__(self, threads: bool = False) -> None:
        """`threads`: suspend jobs on threads even when greenlets are available (to compare the two)."""
        self.greenlets = greenlet is not None and not threads
        self.now = 0.0
        self.until = float("inf")
        self.errors: list[str] = []
        self.error_objects: list[BaseException] = []
        self._heap: list[tuple[float, int, _Entry]] = []  # (time, seq, entry): ties run in FIFO order
        self._seq = 0
        self._back = threading.Lock()
        self._back.acquire()
        self._current: Job | None = None
        self._suspended: dict[Job, _Entry | None] = {}  # job → its resume entry (None: waits on a lock)
        self._paused: set[str] = set()
        self._frozen: dict[str, list[_Entry]] = {}
        self._dead: set[str] = set()

    # ------------------------------------------------------------------------------ scheduling

    def _push(self, time: float, owner: str, callback: Callable[[], None] | None, job: Job | None) -> _Entry:
        self._seq += 1
        entry = _Entry(max(time, self.now), self._seq, owner, callback, job)
        heapq.heappush(self._heap, (entry.time, entry.seq, entry))
        return entry

    def at(self, time: float, owner: str, callback: Callable[[], None]) -> _Entry:
        """Run `callback` at `time` (or now, if that passed) in the scheduler's thread."""
        return self._push(time, owner, callback, None)

    def spawn(
        self,
        time: float,
        owner: str,
        name: str,
        fn: Callable[[], Any],
        done: Callable[[Any], None] | None = None,
    ) -> Job:
        """Run `fn` as a job at `time`; `done(result)` runs right after it returns (same instant)."""
        job = Job(owner, name, fn, done)
        job.entry = self._push(time, owner, None, job)
        return job

    def cancel(self, job: Job) -> bool:
        """Drop a job that has not started yet (True), else leave it (False)."""
        if job.entry is None:
            return False
        job.entry.cancelled = True
        return True

    def run(self, until: float) -> None:
        self.until = until
        while self._heap and self._heap[0][0] <= until:
            entry = heapq.heappop(self._heap)[2]
            if entry.cancelled or entry.owner in self._dead:
                continue
            if entry.owner in self._paused:
                self._frozen.setdefault(entry.owner, []).append(entry)
                continue
            self.now = max(self.now, entry.time)
            if entry.callback is not None:
                entry.callback()
            elif entry.job is not None:
                self._switch(entry.job)
        self.now = max(self.now, until)

    def _switch(self, job: Job) -> None:
        """Hand the baton to `job` (start or resume it) and wait until it blocks or ends."""
        if self.greenlets:
            if job.fiber is None:
                job.entry = None
                job.started = self.now
                job.fiber = greenlet.greenlet(lambda: _run_job(self, job))
            self._suspended.pop(job, None)
            self._current = job
            job.fiber.switch()
            self._current = None
            return
        if job.worker is None:
            job.entry = None
            job.worker = _worker()
            job.worker.job = job
            job.worker.kernel = self
            job.started = self.now
        self._suspended.pop(job, None)
        self._current = job
        job.worker.go.release()
        self._back.acquire()
        self._current = None

    def _finished(self, job: Job, worker: _Worker) -> None:
        """Called on the job's thread when it ends: back to the pool, baton back to the scheduler."""
        job.worker = None
        worker.job = worker.kernel = None
        with _POOL_LOCK:
            _POOL.append(worker)
        self._back.release()

    def _block(self, job: Job, resume_at: float | None) -> None:
        """Suspend the running job until `resume_at` (None: until `wake`)."""
        self._suspended[job] = None if resume_at is None else self._push(resume_at, job.owner, None, job)
        if self.greenlets:
            job.fiber.parent.switch()
        else:
            worker = job.worker
            assert worker is not None
            self._back.release()
            worker.go.acquire()
        if job.killed:
            raise Killed()

    def wake(self, job: Job) -> None:
        self._suspended[job] = self._push(self.now, job.owner, None, job)

    # ------------------------------------------------------------------------------ what the real code calls

    @property
    def current(self) -> Job | None:
        return self._current

    def sleep(self, seconds: float) -> None:
        """Block the running job for `seconds` of virtual time."""
        target = self.now + max(0.0, seconds)
        job = self._current
        horizon = min(self._heap[0][0] if self._heap else float("inf"), self.until)
        if job is None:
            if target < horizon:
                self.now = target
                return
            raise SimError(f"a callback blocked for {seconds:.3f}s at {self.now:.3f}")
        if job.killed:
            raise Killed()
        if target < horizon:
            self.now = target
            return
        self._block(job, target)

    # ------------------------------------------------------------------------------ faults

    def pause(self, owner: str) -> None:
        self._paused.add(owner)

    def resume(self, owner: str) -> None:
        self._paused.discard(owner)
        for entry in self._frozen.pop(owner, []):
            entry.time = self.now
            heapq.heappush(self._heap, (entry.time, entry.seq, entry))

    def kill(self, owner: str) -> None:
        """Nothing of `owner` runs again; its suspended jobs unwind now (raising Killed where they block)."""
        self._dead.add(owner)
        self._paused.discard(owner)
        self._frozen.pop(owner, None)
        for job, entry in list(self._suspended.items()):
            if job.owner != owner:
                continue
            if entry is not None:
                entry.cancelled = True
            if job.waiting_on is not None:
                job.waiting_on.forget(job)
            job.killed = True
            outer = self._current
            self._switch(job)
            self._current = outer

    def suspended(self) -> list[tuple[Job, float | None]]:
        """Jobs blocked now, with when they resume (None: waiting on a lock)."""
        return [(job, None if e is None else e.time) for job, e in self._suspended.items()]

    def shutdown(self) -> None:
        """Unwind every suspended job (end of a run): the pooled threads return to the pool."""
        for owner in sorted({job.owner for job in self._suspended}):
            self.kill(owner)
        self._heap.clear()


class SimLock:
    """A mutex for jobs: a contended acquire suspends the job until the holder releases it (a real lock
    would block the thread and with it the whole simulation)."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.holder: Job | str | None = None
        self.waiters: deque[Job] = deque()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        me: Job | str = self.kernel.current or "scheduler"
        if self.holder is None:
            self.holder = me
            return True
        if not blocking:
            return False
        if not isinstance(me, Job):
            raise SimError("a callback waited for a lock held by a job")
        self.waiters.append(me)
        me.waiting_on = self
        try:
            self.kernel._block(me, None)
        except Killed:
            if self.holder is me:  # handed over just before the kill: pass it on
                self.release()
            raise
        me.waiting_on = None
        return True

    def release(self) -> None:
        if self.waiters:
            nxt = self.waiters.popleft()
            nxt.waiting_on = None
            self.holder = nxt
            self.kernel.wake(nxt)
        else:
            self.holder = None

    def forget(self, job: Job) -> None:
        if job in self.waiters:
            self.waiters.remove(job)

    def locked(self) -> bool:
        return self.holder is not None

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *_: object) -> None:
        self.release()
