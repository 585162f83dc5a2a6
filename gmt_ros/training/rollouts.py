"""DAgger rollouts: episodes of the teacher/student mixture in the in-process simulator, in a
pool of worker processes (no PyTorch here: the student runs as its ONNX export, through the same
``TrackingPolicy`` and ``run_episode`` send path as ``gmt-ros evaluate``).

Each episode is ``sim2sim.evaluate.run_episode`` with the student's contract (the robot runs the
student's deployment configuration), the episode's domain randomisation drawn from its seed, and
``DaggerMixture`` as the policy; it returns the recorded observations and teacher labels and the
episode's report (fell, errors, ...).
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from sim2sim.worker_pool import WorkerPool


@dataclass(frozen=True)
class EpisodeSpec:
    """One rollout: which clip, the DR preset and seed, who acts, how the robot starts."""

    clip: str  # library name, for reports
    clip_path: str
    seed: int  # draws the randomisation
    dr: str
    teacher_share: float
    student_onnx: str  # the student's network for this rollout: its iteration's export, a new path each time
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

    stat = os.stat(onnx_path)
    key = (onnx_path, stat.st_mtime_ns, stat.st_size)  # a file rewritten in place is a new network
    students = _WORKER["students"]
    if key not in students:
        students.clear()  # one iteration's network at a time
        students[key] = TrackingPolicy(_WORKER["student_contract"], onnx_path=onnx_path)
    return students[key]


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
                            teacher_noise=spec.teacher_noise, clip=clips[spec.clip_path])
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


class RolloutPool(WorkerPool):
    """``sim2sim.worker_pool.WorkerPool`` whose workers hold the teacher and the student's contract,
    kept for the whole run (the student's network is reloaded when a spec names a new export)."""

    def __init__(self, names: PolicyNames, jobs: int = 2):
        super().__init__(jobs, _init_worker, (names,))

    def run(self, specs: Sequence[EpisodeSpec], on_done: Callable[[dict], None] | None = None) -> list[dict]:
        """Every episode, longest clips first; results in the order of ``specs``."""
        order = sorted(range(len(specs)), key=lambda i: -_length(specs[i]))
        return super().run(_guarded, specs, order,
                           on_done=None if on_done is None else lambda i, out: on_done(out["report"]))


_LENGTHS: dict[str, float] = {}


def _length(spec: EpisodeSpec) -> float:
    if spec.seconds is not None:
        return spec.seconds
    if spec.clip_path not in _LENGTHS:
        from gmt_ros.core.motion import load_clip

        _LENGTHS[spec.clip_path] = load_clip(spec.clip_path).duration
    return _LENGTHS[spec.clip_path]
