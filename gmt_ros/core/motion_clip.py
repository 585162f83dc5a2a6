"""A reference motion clip in memory (``MotionClip``: checked, read-only, velocities by a policy's
conventions) and the windows cut from it (``window_from_clip``). Files: ``gmt_ros.core.motion``.

Velocities depend on the policy: ``frames(conventions)`` / ``sample(times, conventions)`` prepare
the reference by a policy contract's ``reference`` conventions (``gmt_ros.core.reference``: GMT's
forward differences with its zero-padded 19-tap box filter, TWIST2's central differences, stored
or unit quaternions, loop or hold past the end). Without conventions, and in the attributes
``root_lin_vel`` / ``root_ang_vel`` / ``joint_vel``, the ``scoring`` preset the evaluation measures
against: centred differences, the 19-tap box filter padded with the edge value (a clip that ends
while moving keeps its speed), unit quaternions. All velocities are in the world frame.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gmt_ros.core import g1, reference, rotations
from gmt_ros.core.frames import MotionFrames, MotionWindow
from gmt_ros.core.reference import QUAT_NORM_RANGE, ReferenceConventions


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def check_quat_norms(quat: np.ndarray, key: str, what: str) -> None:
    norms = np.linalg.norm(quat, axis=1)
    lo, hi = QUAT_NORM_RANGE
    if norms.min() < lo or norms.max() > hi:
        raise ValueError(f"{what}: {key} norms span [{norms.min():.3f}, {norms.max():.3f}]; expected "
                         f"quaternions of length about 1 (within [{lo}, {hi}])")


@dataclass(frozen=True, eq=False)
class MotionClip:
    """A whole reference motion at its own frame rate, in robot motor-slot order.

    root_pos (T,3) m and root_quat (T,4) w,x,y,z of the pelvis in the world, as the source stored
    them (|q| within ``reference.QUAT_NORM_RANGE``; kept in ``root_quat_stored``, while
    ``root_quat`` becomes their unit-length copy); joint_pos (T,29); joint_mask (29,) says which
    joints the source supplied (23-joint clips: wrists False and 0). root_lin_vel / root_ang_vel
    (world frame) and joint_vel are the ``scoring`` velocities, computed on construction; other
    conventions' on first use (``velocities``). Arrays are read-only so the velocities can never
    go stale. The constructor validates but does not repair: glitch repair is part of ``load_clip``.
    """

    name: str
    fps: float
    root_pos: np.ndarray
    root_quat: np.ndarray
    joint_pos: np.ndarray
    joint_mask: np.ndarray
    source: str = ""
    notes: list[str] = field(default_factory=list)
    root_quat_stored: np.ndarray = field(init=False, repr=False)
    root_lin_vel: np.ndarray = field(init=False, repr=False)
    root_ang_vel: np.ndarray = field(init=False, repr=False)
    joint_vel: np.ndarray = field(init=False, repr=False)
    _velocities: dict = field(init=False, repr=False)

    def __post_init__(self):
        what = f"clip {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"{what}: name must be a non-empty string")
        fps = check_fps(self.fps, what)
        root_pos = numeric_array(self.root_pos, "root_pos", what, width=3)
        n = root_pos.shape[0]
        if n < 2:
            raise ValueError(f"{what}: needs at least 2 frames, got {n}")
        stored = numeric_array(self.root_quat, "root_quat", what, width=4, frames=n)
        check_quat_norms(stored, "root_quat", what)
        root_quat = rotations.normalize(stored)
        joint_pos = numeric_array(self.joint_pos, "joint_pos", what, width=g1.NUM_BODY_JOINTS, frames=n)
        mask = np.asarray(self.joint_mask)
        if mask.shape != (g1.NUM_BODY_JOINTS,) or mask.dtype != bool:
            raise ValueError(f"{what}: joint_mask must be a ({g1.NUM_BODY_JOINTS},) bool array, "
                             f"got {mask.shape} {mask.dtype}")
        if np.any(joint_pos[:, ~mask] != 0.0):
            raise ValueError(f"{what}: joints outside joint_mask must be 0 (they carry no data)")
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        set_("fps", fps)
        set_("notes", [str(s) for s in self.notes])
        set_("source", str(self.source))
        set_("root_pos", _readonly(root_pos))
        set_("root_quat", _readonly(root_quat))
        set_("root_quat_stored", _readonly(stored))
        set_("joint_pos", _readonly(joint_pos))
        set_("joint_mask", _readonly(mask.copy()))
        set_("_velocities", {})
        lin, ang, jv = self.velocities(reference.SCORING)
        set_("root_lin_vel", lin)
        set_("root_ang_vel", ang)
        set_("joint_vel", jv)

    @property
    def num_frames(self) -> int:
        return int(self.root_pos.shape[0])

    @property
    def duration(self) -> float:
        """Seconds from the first to the last frame."""
        return (self.num_frames - 1) / self.fps

    @property
    def num_joints(self) -> int:
        """How many joints the source supplied (23 or 29)."""
        return int(self.joint_mask.sum())

    def quaternions(self, conventions: ReferenceConventions | None = None) -> np.ndarray:
        """The root quaternions the conventions use: as stored, or unit length."""
        conventions = conventions or reference.SCORING
        return self.root_quat_stored if conventions.as_stored else self.root_quat

    def velocities(self, conventions: ReferenceConventions | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World root linear, angular and joint velocities per frame (read-only) by the
        conventions' difference and smoothing (``reference.source_velocities``); computed once."""
        conventions = conventions or reference.SCORING
        key = (conventions.velocity_difference, conventions.velocity_smoothing, conventions.smoothing_padding,
               conventions.quaternions)
        cached = self._velocities.get(key)
        if cached is None:
            times = np.arange(self.num_frames) / self.fps
            cached = tuple(_readonly(v) for v in reference.source_velocities(
                times, self.root_pos, self.quaternions(conventions), self.joint_pos, conventions))
            self._velocities[key] = cached
        return cached

    def frames(self, conventions: ReferenceConventions | None = None) -> MotionFrames:
        """Every frame (read-only arrays), prepared by the conventions (default ``scoring``)."""
        lin, ang, jv = self.velocities(conventions)
        return MotionFrames(self.root_pos, self.quaternions(conventions), lin, ang, self.joint_pos, jv)

    def sample(self, times, conventions: ReferenceConventions | None = None) -> MotionFrames:
        """Frames at clip times (s), prepared by the conventions (default ``scoring``): positions
        and joints interpolated linearly, the orientation by slerp (the authors' slerp on stored
        quaternions), velocities interpolated or those of the frame at or before the time.

        Past the end (and before the start): ``hold`` holds the end pose with zero velocities
        (the clip says nothing about motion beyond its ends); ``loop`` wraps the time modulo the
        clip's length.
        """
        conventions = conventions or reference.SCORING
        t = np.atleast_1d(np.asarray(times, dtype=np.float64))
        if not np.all(np.isfinite(t)):
            raise ValueError(f"clip {self.name!r}: sample times must be finite")
        i0, i1, blend, outside = reference.clip_frame_index(t, self.fps, self.num_frames, conventions.past_end)
        b = blend[:, None]
        lin, ang, jv = self.velocities(conventions)
        quat = self.quaternions(conventions)
        if conventions.as_stored:
            root_quat = reference.slerp_as_stored(quat[i0], quat[i1], blend)
        else:
            root_quat = rotations.slerp(quat[i0], quat[i1], blend)
        if conventions.velocity_sampling == "frame":
            vel = [v[i0] for v in (lin, ang, jv)]
        else:
            vel = [v[i0] * (1.0 - b) + v[i1] * b for v in (lin, ang, jv)]
        if np.any(outside):
            for v in vel:
                v[outside] = 0.0
        return MotionFrames(root_pos=self.root_pos[i0] * (1.0 - b) + self.root_pos[i1] * b, root_quat=root_quat,
                            root_lin_vel=vel[0], root_ang_vel=vel[1],
                            joint_pos=self.joint_pos[i0] * (1.0 - b) + self.joint_pos[i1] * b, joint_vel=vel[2])


def window_from_clip(clip: MotionClip, clip_time: float, start_time: float, n: int = 100,
                     dt: float = 0.02, conventions: ReferenceConventions | None = None) -> MotionWindow:
    """A MotionWindow whose frame i is ``clip.sample(clip_time + i*dt, conventions)``;
    ``start_time`` is the consumer's clock time of frame 0. ``conventions``: the policy contract's
    ``reference`` (default ``scoring``), which also says what lies past the clip's end."""
    if int(n) != n or n < 2:
        raise ValueError(f"window_from_clip: n must be an integer >= 2, got {n}")
    if not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"window_from_clip: dt must be positive, got {dt}")
    if not (np.isfinite(clip_time) and np.isfinite(start_time)):
        raise ValueError(f"window_from_clip: clip_time and start_time must be finite, got {clip_time}, {start_time}")
    frames = clip.sample(clip_time + np.arange(int(n)) * dt, conventions)
    return MotionWindow(start_time=float(start_time), dt=float(dt), frames=frames,
                        joint_mask=clip.joint_mask.copy(), clip_name=clip.name, clip_time=float(clip_time))


# The checks of a clip's fields, shared with the file readers.

def check_fps(value, what: str) -> float:
    arr = np.asarray(value)
    if arr.size != 1 or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{what}: fps must be one number, got {value!r}")
    fps = float(arr.reshape(()))
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"{what}: fps must be positive and finite, got {fps}")
    return fps


def numeric_array(value, key: str, what: str, width: int | None = None, frames: int | None = None) -> np.ndarray:
    arr = np.asarray(value)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{what}: {key} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if arr.ndim != 2 or (width is not None and arr.shape[1] != width):
        expected = f"(T, {width})" if width is not None else "(T, N)"
        raise ValueError(f"{what}: {key} has shape {arr.shape}, expected {expected}")
    if frames is not None and arr.shape[0] != frames:
        raise ValueError(f"{what}: {key} has {arr.shape[0]} frames but root_pos has {frames}")
    if not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.all(np.isfinite(arr), axis=1))
        raise ValueError(f"{what}: {key} contains NaN or inf (frames {bad[:5].tolist()})")
    return arr
