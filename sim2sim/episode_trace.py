"""The per-tick record of an evaluation episode (``EpisodeTrace``, 50 Hz, saved as .npz) and the
recorder that collects its rows during ``sim2sim.evaluate.run_episode``."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gmt_ros.core import g1
from gmt_ros.core.command_limits import ClipReport
from sim2sim import metrics
from sim2sim.send_path import CLIP_REASONS

_TRACE_ERRORS = metrics.TickErrors._fields


@dataclass
class EpisodeTrace:
    """Per-policy-tick record of one episode (50 Hz), for plots and offline analysis.

    Row i is tick i, sampled just before the policy acts: ``time_s`` (N,); joint angles (N, 29,
    slot order) of the robot (ground truth), of the reference, and the policy's target (the
    command it then sent); pelvis height and roll/pitch (rad) of the robot and the reference;
    the four tick errors of ``sim2sim.metrics``; ``joint_tau`` (N, 29) the torque the motors were
    applying at that instant (the last 1 ms physics step's, after clipping). ``upright`` is False
    only on the last row of a fallen episode (the tick the fall or the command fault was
    detected: its errors are not part of the episode's averages). ``joint_mask``: joints the
    policy tracks and the clip supplies. ``tau_limit``: the motors' torque limits (29).
    ``sent_joint_pos`` (N, 29): the q the motors were sent on the tick's first bridge tick, after
    the command limits (the raw target without them; NaN when nothing was sent);
    ``clip_counts`` (N, 3): slot-ticks the limits clipped during the tick, per reason
    (joint_limit, velocity_limit, torque_limit: ``ClipReport``). Both are None in traces saved
    before they existed.
    """

    time_s: np.ndarray
    joint_pos: np.ndarray
    ref_joint_pos: np.ndarray
    target_joint_pos: np.ndarray
    joint_tau: np.ndarray
    root_height_m: np.ndarray
    ref_root_height_m: np.ndarray
    roll_rad: np.ndarray
    pitch_rad: np.ndarray
    ref_roll_rad: np.ndarray
    ref_pitch_rad: np.ndarray
    e_mpjpe_rad: np.ndarray
    e_mpkpe_mm: np.ndarray
    e_vel_mps: np.ndarray
    e_yaw_vel_radps: np.ndarray
    upright: np.ndarray
    joint_mask: np.ndarray
    tau_limit: np.ndarray
    joint_names: tuple[str, ...] = g1.JOINT_NAMES
    sent_joint_pos: np.ndarray | None = None
    clip_counts: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.time_s.shape[0])

    def save_npz(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {k: v for k, v in self.__dict__.items() if k != "joint_names" and v is not None}
        np.savez_compressed(path, joint_names=np.array(self.joint_names), **arrays)
        return path

    @classmethod
    def load_npz(cls, path: str | Path) -> EpisodeTrace:
        with np.load(path, allow_pickle=False) as data:
            fields = {k: data[k] for k in data.files if k != "joint_names"}
            names = tuple(str(n) for n in data["joint_names"])
        return cls(joint_names=names, **fields)


class TraceRecorder:
    """Collects trace rows during the loop; ``finish()`` stacks them into an EpisodeTrace."""

    def __init__(self, joint_mask: np.ndarray):
        self.rows: dict[str, list] = {k: [] for k in (
            "time_s", "joint_pos", "ref_joint_pos", "target_joint_pos", "sent_joint_pos", "clip_counts",
            "joint_tau", "root_height_m",
            "ref_root_height_m", "roll_rad", "pitch_rad", "ref_roll_rad", "ref_pitch_rad", "upright",
            *_TRACE_ERRORS)}
        self.joint_mask = joint_mask

    def add(self, **values) -> None:
        for key, value in values.items():
            self.rows[key].append(value)

    def set_target(self, q: np.ndarray) -> None:
        self.rows["target_joint_pos"].append(np.asarray(q, dtype=np.float64).copy())

    def set_sent(self, q: np.ndarray | None, clips: ClipReport) -> None:
        """What the tick sent (None: nothing) and what the limits clipped during it."""
        self.rows["sent_joint_pos"].append(np.full(g1.NUM_BODY_JOINTS, np.nan) if q is None
                                           else np.asarray(q, dtype=np.float64).copy())
        self.rows["clip_counts"].append([getattr(clips, r) for r in CLIP_REASONS])

    def end_tick(self) -> None:
        """The last row's tick ended the episode (a command fault): not upright, like a fall tick."""
        self.rows["upright"][-1] = False

    def finish(self) -> EpisodeTrace:
        n = len(self.rows["time_s"])
        for key in ("target_joint_pos", "sent_joint_pos"):
            rows = self.rows[key]
            while len(rows) < n:  # the fall tick sends no command
                rows.append(np.full(g1.NUM_BODY_JOINTS, np.nan))
        while len(self.rows["clip_counts"]) < n:
            self.rows["clip_counts"].append([0] * len(CLIP_REASONS))
        arrays = {}
        for key, values in self.rows.items():
            if key == "clip_counts":
                arrays[key] = np.asarray(values, dtype=np.int64).reshape(n, len(CLIP_REASONS))
            elif key in ("joint_pos", "ref_joint_pos", "target_joint_pos", "sent_joint_pos", "joint_tau"):
                arrays[key] = np.asarray(values, dtype=np.float64).reshape(n, g1.NUM_BODY_JOINTS)
            elif key == "upright":
                arrays[key] = np.asarray(values, dtype=bool).reshape(n)
            else:
                arrays[key] = np.asarray(values, dtype=np.float64).reshape(n)
        return EpisodeTrace(joint_mask=self.joint_mask.copy(), tau_limit=g1.TAU_MAX.astype(np.float64).copy(),
                            **arrays)
