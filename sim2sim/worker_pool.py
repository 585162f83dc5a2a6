"""Worker processes and a progress bar shared by the batch evaluation (``sim2sim.batch``) and the
DAgger rollouts (``gmt_ros.training.rollouts``)."""
from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import TextIO

_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class Progress:
    """A plain-text progress bar on a stream: one rewritten line on a terminal, else a line per run."""

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 30):
        self.total, self.done, self.falls = total, 0, 0
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.started = time.monotonic()
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def update(self, row: dict) -> None:
        self.done += 1
        self.falls += bool(row.get("fell"))
        elapsed = time.monotonic() - self.started
        eta = elapsed / self.done * (self.total - self.done)
        filled = int(self.width * self.done / self.total)
        bar = "#" * filled + "." * (self.width - filled)
        text = (f"[{bar}] {self.done}/{self.total} runs | {self.falls} fell | {_clock(elapsed)} elapsed"
                f" | ~{_clock(eta)} left | last: {row['clip']} seed {row['seed']}"
                f" {'FELL' if row.get('fell') else 'ok'}")
        if self.tty:
            self.stream.write("\r" + text + ("\n" if self.done == self.total else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s"


class WorkerPool:
    """``jobs`` spawned worker processes, each set up once by ``initializer(*initargs)`` (one BLAS
    thread each: ``jobs`` workers keep ``jobs`` cores busy); ``jobs=1`` runs in this process. Use as
    a context manager; an exception inside the block stops the workers without waiting for their
    running tasks. Shared by ``run_batch`` and the DAgger rollouts (``gmt_ros.training.rollouts``)."""

    def __init__(self, jobs: int, initializer: Callable, initargs: tuple = ()):
        if isinstance(jobs, bool) or int(jobs) != jobs or jobs < 1:
            raise ValueError(f"jobs must be a positive integer, got {jobs}")
        self.jobs, self.initializer, self.initargs = int(jobs), initializer, initargs
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> WorkerPool:
        if self.jobs == 1:
            self.initializer(*self.initargs)
            return self
        saved = {k: os.environ.get(k) for k in _THREAD_ENV}
        os.environ.update({k: "1" for k in _THREAD_ENV})  # inherited by the spawned workers
        try:
            self._pool = ProcessPoolExecutor(max_workers=self.jobs, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=self.initializer, initargs=self.initargs)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if self._pool is None:
            return
        if exc_type is not None:  # interrupted or failed: do not wait for the running tasks
            for process in list((getattr(self._pool, "_processes", None) or {}).values()):
                process.terminate()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = None

    def run(self, fn: Callable, items: Sequence, order: Sequence[int] | None = None,
            on_done: Callable[[int, object], None] | None = None) -> list:
        """``fn(item)`` for every item (submitted in ``order``, default as given); results in the
        order of ``items``; ``on_done(index, result)`` as each finishes. The first exception
        cancels what has not started and propagates."""
        order = range(len(items)) if order is None else order
        results: list = [None] * len(items)

        def finished(i: int, result) -> None:
            results[i] = result
            if on_done is not None:
                on_done(i, result)

        if self._pool is None:
            for i in order:
                finished(i, fn(items[i]))
            return results
        futures = {self._pool.submit(fn, items[i]): i for i in order}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    finished(futures[future], future.result())
        except BaseException:
            for future in pending:
                future.cancel()
            raise
        return results
