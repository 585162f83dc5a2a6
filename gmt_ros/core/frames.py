"""Reference-motion frames: the unit that clips, windows and observation builders exchange."""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from gmt_ros.core import g1
from gmt_ros.core.reference import QUAT_NORM_RANGE, slerp_keep_norm


@dataclass
class MotionFrames:
    """N frames of a reference motion (leading axis N), all in the world frame.

    root_pos (N,3) m; root_quat (N,4) w,x,y,z (unit, or as a clip stored it when the policy's
    reference conventions say so: |q| within ``reference.QUAT_NORM_RANGE``); root_lin_vel (N,3) m/s
    and root_ang_vel (N,3) rad/s in the world frame; joint_pos / joint_vel (N,29) in robot
    motor-slot order.
    """

    root_pos: np.ndarray
    root_quat: np.ndarray
    root_lin_vel: np.ndarray
    root_ang_vel: np.ndarray
    joint_pos: np.ndarray
    joint_vel: np.ndarray

    def __len__(self) -> int:
        return int(self.root_pos.shape[0])

    def take(self, index) -> MotionFrames:
        """Frames at integer index/indices (numpy indexing on the leading axis)."""
        return MotionFrames(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def validate(self, what: str = "motion frames") -> None:
        n = len(self)
        widths = {"root_pos": 3, "root_quat": 4, "root_lin_vel": 3, "root_ang_vel": 3,
                  "joint_pos": g1.NUM_BODY_JOINTS, "joint_vel": g1.NUM_BODY_JOINTS}
        for name, width in widths.items():
            value = np.asarray(getattr(self, name))
            if value.shape != (n, width):
                raise ValueError(f"{what}: {name} has shape {value.shape}, expected ({n}, {width})")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"{what}: {name} contains NaN or inf")
        norms = np.linalg.norm(self.root_quat, axis=-1)
        lo, hi = QUAT_NORM_RANGE
        if np.any((norms < lo) | (norms > hi)):
            raise ValueError(f"{what}: root_quat norms span [{norms.min():.3f}, {norms.max():.3f}], outside "
                             f"[{lo}, {hi}]: not a rotation")

    def interpolate(self, index: np.ndarray) -> MotionFrames:
        """Frames at fractional indices: linear for vectors, slerp for orientation (the norm
        blended linearly, so stored quaternions stay as they are at the frames). Indices are
        clamped to [0, N-1]."""
        idx = np.clip(np.asarray(index, dtype=np.float64), 0.0, len(self) - 1)
        lo = np.floor(idx).astype(np.int64)
        hi = np.minimum(lo + 1, len(self) - 1)
        frac = idx - lo

        def lerp(a):
            f = frac[..., None]
            return a[lo] * (1.0 - f) + a[hi] * f

        return MotionFrames(
            root_pos=lerp(self.root_pos),
            root_quat=slerp_keep_norm(self.root_quat[lo], self.root_quat[hi], frac),
            root_lin_vel=lerp(self.root_lin_vel),
            root_ang_vel=lerp(self.root_ang_vel),
            joint_pos=lerp(self.joint_pos),
            joint_vel=lerp(self.joint_vel),
        )


@dataclass
class MotionWindow:
    """A short future of the reference motion, as the motion-target topic carries it.

    Frame i is the reference at ``start_time + i * dt`` (seconds on the consumer's clock).
    ``joint_mask`` says which of the 29 joints the producer supplied (a 23-joint producer leaves
    the wrists False; their values are 0). Sampling past the last frame holds the last pose with
    zero velocity: the producer has said nothing about later times.
    """

    start_time: float
    dt: float
    frames: MotionFrames
    joint_mask: np.ndarray
    clip_name: str = ""
    clip_time: float = 0.0  # time within the clip of frame 0, for reports

    @property
    def end_time(self) -> float:
        return self.start_time + (len(self.frames) - 1) * self.dt

    def validate(self) -> None:
        if not (np.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f"motion window: dt must be positive, got {self.dt}")
        if len(self.frames) < 2:
            raise ValueError(f"motion window: needs at least 2 frames, got {len(self.frames)}")
        if np.asarray(self.joint_mask).shape != (g1.NUM_BODY_JOINTS,):
            raise ValueError("motion window: joint_mask must have 29 entries")
        self.frames.validate("motion window")

    def sample(self, times) -> MotionFrames:
        """Interpolated frames at absolute times (scalar or array)."""
        times = np.atleast_1d(np.asarray(times, dtype=np.float64))
        index = (times - self.start_time) / self.dt
        out = self.frames.interpolate(index)
        past = index > len(self.frames) - 1
        if np.any(past):
            for name in ("root_lin_vel", "root_ang_vel", "joint_vel"):
                getattr(out, name)[past] = 0.0
        return out
