"""DAgger rollouts: episodes of the teacher/student mixture in the in-process simulator, in a
pool of worker processes (no PyTorch here: the student runs as its ONNX export, through the same
``TrackingPolicy`` and ``run_episode`` send path as ``gmt-ros evaluate``).

Each episode is ``sim2sim.evaluate.run_episode`` with the student's contract (the robot runs the
student's deployment configuration), the episode's domain randomisation drawn from its seed, and
``DaggerMixture`` as the policy; it returns the recorded observations and teacher labels and the
episode's report (fell, errors, ...).
"""
from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass

import numpy as np

_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class EpisodeSpec:
    """One rollout: which clip, the DR preset and seed, who acts, how the robot starts."""

    clip: str  # library name, for reports
    clip_path: str
    seed: int  # draws the randomisation
    dr: str
    teacher_share: float
    student_onnx: str  # the student's network for this rollout (its iteration's export)
    start: str = "clip"
    mix_seed: int = 0  # draws who acts on each tick, and the teacher's action noise
    teacher_noise: float = 0.0  # std of the noise on the teacher's sent actions (raw units)
    seconds: float | None = None


@dataclass(frozen=True)
class PolicyNames:
    """Contracts (names or paths) of the teacher and the student."""

    teacher: str
    student: str


_WORKER: dict = {}


def _init_worker(names: PolicyNames) -> None:
    from gmt_ros.core.contract import load_contract
    from gmt_ros.core.policy import TrackingPolicy

    _WORKER.clear()
    _WORKER.update(names=names, teacher=TrackingPolicy(load_contract(names.teacher)),
                   student_contract=load_contract(names.student), students={}, clips={})


def _student(onnx_path: str):
    from gmt_ros.core.policy import TrackingPolicy

    students = _WORKER["students"]
    if onnx_path not in students:
        students.clear()  # one iteration's network at a time
        students[onnx_path] = TrackingPolicy(_WORKER["student_contract"], onnx_path=onnx_path)
    return students[onnx_path]


def run_one(spec: EpisodeSpec) -> dict:
    """One episode in this process (``_init_worker`` first); returns arrays and the report."""
    from gmt_ros.core.motion import load_clip
    from gmt_ros.training.mixture import DaggerMixture
    from sim2sim.evaluate import run_episode

    clips = _WORKER["clips"]
    if spec.clip_path not in clips:
        clips[spec.clip_path] = load_clip(spec.clip_path)
    student = _student(spec.student_onnx)
    mixture = DaggerMixture(_WORKER["teacher"], student, spec.teacher_share, np.random.default_rng(spec.mix_seed),
                            teacher_noise=spec.teacher_noise)
    started = time.perf_counter()
    result = run_episode(student.contract, clips[spec.clip_path], seconds=spec.seconds, seed=spec.seed,
                         start=spec.start, dr=None if spec.dr == "none" else spec.dr, policy=mixture)
    wall = time.perf_counter() - started
    c = student.contract
    data = mixture.recording.arrays(c.obs_dim, c.action_dim)
    report = result.as_dict()
    report.pop("randomization", None)
    acted = data["student_acted"]
    errors = data["student_error"][acted]
    report.update(spec=asdict(spec), wall_s=round(wall, 3), samples=int(len(acted)),
                  student_ticks=int(acted.sum()),
                  student_action_error=float(errors.mean()) if errors.size else None)
    return {"report": report, "observations": data["observations"], "labels": data["labels"]}


def _guarded(spec: EpisodeSpec) -> dict:
    try:
        return run_one(spec)
    except Exception as exc:
        raise RuntimeError(f"rollout {spec.clip} seed {spec.seed} failed: {type(exc).__name__}: {exc}") from exc


class RolloutPool:
    """``jobs`` spawned worker processes (one onnxruntime thread each), kept for the whole run;
    ``jobs=1`` runs in this process. Use as a context manager."""

    def __init__(self, names: PolicyNames, jobs: int = 2):
        if isinstance(jobs, bool) or int(jobs) != jobs or jobs < 1:
            raise ValueError(f"jobs must be a positive integer, got {jobs}")
        self.names = names
        self.jobs = int(jobs)
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> "RolloutPool":
        if self.jobs == 1:
            _init_worker(self.names)
            return self
        saved = {k: os.environ.get(k) for k in _THREAD_ENV}
        os.environ.update({k: "1" for k in _THREAD_ENV})  # inherited by the spawned workers
        try:
            self._pool = ProcessPoolExecutor(max_workers=self.jobs, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_init_worker, initargs=(self.names,))
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if self._pool is not None:
            if exc_type is not None:  # interrupted: do not wait for running episodes
                for process in list(getattr(self._pool, "_processes", {}).values()):
                    process.terminate()
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def run(self, specs: Sequence[EpisodeSpec], on_done: Callable[[dict], None] | None = None) -> list[dict]:
        """Every episode, longest clips first; results in the order of ``specs``."""
        order = sorted(range(len(specs)), key=lambda i: -_length(specs[i]))
        results: list[dict | None] = [None] * len(specs)

        def done(i: int, out: dict) -> None:
            results[i] = out
            if on_done is not None:
                on_done(out["report"])

        if self._pool is None:
            if not _WORKER:
                raise RuntimeError("RolloutPool.run outside its 'with' block")
            for i in order:
                done(i, _guarded(specs[i]))
            return results  # type: ignore[return-value]
        futures = {self._pool.submit(_guarded, specs[i]): i for i in order}
        pending = set(futures)
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    done(futures[future], future.result())
        except BaseException:
            for future in pending:
                future.cancel()
            raise
        return results  # type: ignore[return-value]


_LENGTHS: dict[str, float] = {}


def _length(spec: EpisodeSpec) -> float:
    if spec.seconds is not None:
        return spec.seconds
    if spec.clip_path not in _LENGTHS:
        from gmt_ros.core.motion import load_clip

        _LENGTHS[spec.clip_path] = load_clip(spec.clip_path).duration
    return _LENGTHS[spec.clip_path]
