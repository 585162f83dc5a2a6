"""Reference motion clips: load, check and repair, sample in time, save in the project format.

Formats read by ``load_clip``:

* ``.pkl`` - the GMT / TWIST2 clip dict: ``fps``, ``root_pos`` (T,3), ``root_rot`` (T,4) quaternion
  **x, y, z, w**, ``dof_pos`` (T,23) in GMT order (``g1.GMT23_NAMES``) or (T,29) in motor-slot
  order; ``local_body_pos`` / ``link_body_list`` are ignored. Read with the restricted unpickler
  of ``safe_pickle`` (a clip cannot run code). Quaternions are reordered to w, x, y, z and kept
  as stored (GMT's have |q| 0.947-0.997; ``root_quat`` is their unit-length copy); 23-joint clips
  get zero wrists, masked out.
* ``.npz`` - the project format written by ``save_clip`` (schema 2, read with
  ``allow_pickle=False``): schema_version, name, fps, root_pos, root_quat_wxyz (as stored),
  joint_pos (T,29), joint_mask (29,), joint_names (the 29 slot names, checked), source, notes.
  Arrays are float32 (GMT's pickles are float32: their values come through bit for bit). Schema 1
  files (quaternions normalised when converted) are still read.

Velocities depend on the policy: ``frames(conventions)`` / ``sample(times, conventions)`` prepare
the reference by a policy contract's ``reference`` conventions (``gmt_ros.core.reference``: GMT's
forward differences with its zero-padded 19-tap box filter, TWIST2's central differences, stored
or unit quaternions, loop or hold past the end). Without conventions, and in the attributes
``root_lin_vel`` / ``root_ang_vel`` / ``joint_vel``, the ``scoring`` preset the evaluation measures
against: centred differences, the 19-tap box filter padded with the edge value (a clip that ends
while moving keeps its speed), unit quaternions. All velocities are in the world frame.
"""
from __future__ import annotations

import argparse
import io
import itertools
import os
import sys
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gmt_ros.core import g1, reference, rotations
from gmt_ros.core.frames import MotionFrames, MotionWindow
from gmt_ros.core.reference import QUAT_NORM_RANGE, ReferenceConventions
from gmt_ros.core.safe_pickle import load_pickled_dict

SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)  # 1: quaternions normalised at conversion; 2: as stored

# Glitch detection, per step between consecutive frames, on three implied speeds:
# root translation (m/s), root rotation (rad/s) and the fastest joint (rad/s).
# A step is a jump when a speed exceeds JUMP_HARD_LIMIT (nothing a G1 reference should ever do),
# or when it exceeds JUMP_FLOOR *and* is JUMP_RATIO times the median of the same speed over the
# JUMP_NEIGHBOURS steps on either side (a spike, not a fast movement: fast movements are fast
# over several frames). Measured on the shipped clips after repair: genuine motion peaks at
# 1.8 m/s, 6.2 rad/s and 14.3 rad/s (TWIST2 walk_006 squats to 0.42 m, GMT crouchwalk to 0.43 m,
# airkick's kick reaches 6.7 rad/s) and no step above a floor is more than 5.5x its neighbours.
# The corrupt first frames of six TWIST2 recordings are 73-4200x their neighbours (walk_004:
# 95 m/s root, 35 rad/s joint); the mildest two (walk_002, walk_006: 4.4 and 4.6 rad/s of yaw
# in one step) sit just above the 4 rad/s floor.
JUMP_HARD_LIMIT = np.array([8.0, 25.0, 30.0])
JUMP_FLOOR = np.array([1.0, 4.0, 8.0])
JUMP_RATIO = 10.0
JUMP_NEIGHBOURS = 5
# A run of at most this many frames bounded by jumps is a glitch: trimmed at the clip's ends,
# interpolated inside. A jump between two longer stretches is a cut/teleport: refused.
MAX_GLITCH_FRAMES = 5

_SPEED_LABELS = (("root", "m/s"), ("root rotation", "rad/s"), ("joint", "rad/s"))
_PICKLE_REQUIRED = ("fps", "root_pos", "root_rot", "dof_pos")
_PICKLE_IGNORED = ("local_body_pos", "link_body_list")
_NPZ_KEYS = ("schema_version", "name", "fps", "root_pos", "root_quat_wxyz", "joint_pos",
             "joint_mask", "joint_names", "source", "notes")


class MotionRepairWarning(UserWarning):
    """A clip was repaired while loading (frames trimmed or interpolated)."""


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _check_quat_norms(quat: np.ndarray, key: str, what: str) -> None:
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
        fps = _check_fps(self.fps, what)
        root_pos = _float_array(self.root_pos, "root_pos", what, width=3)
        n = root_pos.shape[0]
        if n < 2:
            raise ValueError(f"{what}: needs at least 2 frames, got {n}")
        stored = _float_array(self.root_quat, "root_quat", what, width=4, frames=n)
        _check_quat_norms(stored, "root_quat", what)
        root_quat = rotations.normalize(stored)
        joint_pos = _float_array(self.joint_pos, "joint_pos", what, width=g1.NUM_BODY_JOINTS, frames=n)
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


# ----------------------------------------------------------------------------- validation helpers

def _check_fps(value, what: str) -> float:
    arr = np.asarray(value)
    if arr.size != 1 or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{what}: fps must be one number, got {value!r}")
    fps = float(arr.reshape(()))
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"{what}: fps must be positive and finite, got {fps}")
    return fps


def _float_array(value, key: str, what: str, width: int | None = None, frames: int | None = None) -> np.ndarray:
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


# ----------------------------------------------------------------------------- glitch repair

def step_speeds(fps: float, root_pos: np.ndarray, root_quat: np.ndarray, joint_pos: np.ndarray) -> np.ndarray:
    """(T-1, 3) speeds implied by each step: root m/s, root rotation rad/s, fastest joint rad/s."""
    lin = np.linalg.norm(np.diff(root_pos, axis=0), axis=1) * fps
    ang = np.linalg.norm(rotations.angular_velocity(root_quat[:-1], root_quat[1:], 1.0 / fps), axis=1)
    joint = np.max(np.abs(np.diff(joint_pos, axis=0)), axis=1) * fps
    return np.stack([lin, ang, joint], axis=1)


def find_jumps(speeds: np.ndarray) -> np.ndarray:
    """Which steps are jumps (see JUMP_* above); (T-1,) bool."""
    n = len(speeds)
    w = JUMP_NEIGHBOURS
    if n > 1:
        padded = np.concatenate([np.full((w, 3), np.nan), speeds, np.full((w, 3), np.nan)])
        windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * w + 1, axis=0).copy()
        windows[:, :, w] = np.nan  # the step itself is not its own neighbour
        local = np.nanmedian(windows, axis=2)
    else:
        local = np.full_like(speeds, np.inf)
    spike = (speeds > JUMP_FLOOR) & (speeds > JUMP_RATIO * local)
    return np.any((speeds > JUMP_HARD_LIMIT) | spike, axis=1)


def _describe_speeds(speeds: np.ndarray) -> str:
    """The peak implied speeds of some steps, those above the floors (all if none is)."""
    peak = speeds.max(axis=0)
    parts = [f"{label} {v:.1f} {unit}" for (label, unit), v in zip(_SPEED_LABELS, peak)]
    above = [p for p, v, floor in zip(parts, peak, JUMP_FLOOR) if v > floor]
    return "jumps of " + ", ".join(above or parts)


def _span(a: int, b: int) -> str:
    return f"frame {a}" if a == b else f"frames {a}-{b}"


def repair_glitches(name: str, fps: float, root_pos: np.ndarray, root_quat: np.ndarray,
                    joint_pos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Trim glitched leading/trailing frames and interpolate short glitched runs inside.

    The clip is cut at every jump into stretches of frames; stretches longer than
    MAX_GLITCH_FRAMES are genuine motion. Short stretches before the first / after the last
    genuine one are dropped; short runs between two genuine stretches are replaced by
    interpolation between their neighbours. Two genuine stretches meeting at a jump (a cut) or
    a clip with no genuine stretch is refused. Returns the repaired arrays and one note per repair
    (frame numbers of the input); each repair is also warned as MotionRepairWarning.
    """
    what = f"clip {name!r}"
    speeds = step_speeds(fps, root_pos, root_quat, joint_pos)
    jumps = np.flatnonzero(find_jumps(speeds))
    if jumps.size == 0:
        return root_pos, root_quat, joint_pos, []
    n = len(root_pos)
    bounds = [0] + [int(k) + 1 for k in jumps] + [n]
    stretches = list(itertools.pairwise(bounds))  # [start, end) frame ranges between jumps
    genuine = [e - s > MAX_GLITCH_FRAMES for s, e in stretches]
    if not any(genuine):
        raise ValueError(f"{what}: {len(jumps)} implausible jumps and no stretch of more than "
                         f"{MAX_GLITCH_FRAMES} frames without one; not a usable clip")
    root_pos, root_quat, joint_pos = root_pos.copy(), root_quat.copy(), joint_pos.copy()
    notes: list[str] = []
    first = genuine.index(True)
    last = len(genuine) - 1 - genuine[::-1].index(True)
    i = first
    while i < last:
        j = i + 1
        while not genuine[j]:
            j += 1
        # stretches i and j are genuine; everything between is a short glitch run
        a, b = stretches[i][1], stretches[j][0]  # glitch frames [a, b)
        around = speeds[a - 1:b]  # the steps entering, inside and leaving the run
        if a == b:
            raise ValueError(f"{what}: jump between frames {a - 1} and {a} ({_describe_speeds(around)}) "
                             "joins two long stretches: a cut or teleport, not a glitch; fix the clip")
        if b - a > MAX_GLITCH_FRAMES:
            raise ValueError(f"{what}: {b - a} glitched frames in a row ({_span(a, b - 1)}); at most "
                             f"{MAX_GLITCH_FRAMES} can be interpolated")
        frac = (np.arange(a, b) - (a - 1)) / (b - (a - 1))
        root_pos[a:b] = root_pos[a - 1] + frac[:, None] * (root_pos[b] - root_pos[a - 1])
        joint_pos[a:b] = joint_pos[a - 1] + frac[:, None] * (joint_pos[b] - joint_pos[a - 1])
        root_quat[a:b] = reference.slerp_keep_norm(np.broadcast_to(root_quat[a - 1], (b - a, 4)),
                                                   np.broadcast_to(root_quat[b], (b - a, 4)), frac)
        notes.append(f"interpolated {_span(a, b - 1)} between frames {a - 1} and {b} ({_describe_speeds(around)})")
        i = j
    head, tail = stretches[first][0], stretches[last][1]
    for count, where in ((head, "leading"), (n - tail, "trailing")):
        if count > MAX_GLITCH_FRAMES:
            raise ValueError(f"{what}: {count} {where} frames are broken up by jumps; at most "
                             f"{MAX_GLITCH_FRAMES} are dropped as a glitch; fix the clip")
    if head > 0:
        notes.insert(0, f"dropped leading {_span(0, head - 1)} ({_describe_speeds(speeds[:head])}); "
                        f"clip time 0 is input frame {head}")
    if tail < n:
        notes.append(f"dropped trailing {_span(tail, n - 1)} of {n} ({_describe_speeds(speeds[tail - 1:])})")
    root_pos, root_quat, joint_pos = root_pos[head:tail], root_quat[head:tail], joint_pos[head:tail]
    left = np.flatnonzero(find_jumps(step_speeds(fps, root_pos, root_quat, joint_pos)))
    if left.size:
        raise ValueError(f"{what}: still has implausible jumps after repair (at output frames "
                         f"{(left + 1).tolist()[:5]}); fix the clip")
    for note in notes:
        warnings.warn(f"{what}: {note}", MotionRepairWarning, stacklevel=3)
    return root_pos, root_quat, joint_pos, notes


# ----------------------------------------------------------------------------- loading

def _clip_from_arrays(name, fps, root_pos, root_quat, joint_pos, mask, source, notes) -> MotionClip:
    root_pos, root_quat, joint_pos, repairs = repair_glitches(name, fps, root_pos, root_quat, joint_pos)
    return MotionClip(name=name, fps=fps, root_pos=root_pos, root_quat=root_quat, joint_pos=joint_pos,
                      joint_mask=mask, source=source, notes=list(notes) + repairs)


def _load_pickle_clip(path: Path, name: str) -> MotionClip:
    what = f"clip {name!r} ({path})"
    data = load_pickled_dict(path, what)
    missing = [k for k in _PICKLE_REQUIRED if k not in data]
    if missing:
        raise ValueError(f"{what}: missing keys {missing}; a GMT/TWIST2 clip needs {list(_PICKLE_REQUIRED)}, "
                         f"this one has {sorted(data)}")
    fps = _check_fps(data["fps"], what)
    root_pos = _float_array(data["root_pos"], "root_pos", what, width=3)
    n = root_pos.shape[0]
    if n < 2:
        raise ValueError(f"{what}: needs at least 2 frames, got {n}")
    root_rot = _float_array(data["root_rot"], "root_rot", what, width=4, frames=n)
    _check_quat_norms(root_rot, "root_rot", what)
    dof = _float_array(data["dof_pos"], "dof_pos", what, frames=n)
    count = dof.shape[1]
    if count == len(g1.GMT23_NAMES):
        joint_pos = g1.expand_to_29(dof, g1.GMT23_NAMES)
        mask = np.zeros(g1.NUM_BODY_JOINTS, dtype=bool)
        mask[list(g1.GMT23_SLOTS)] = True
    elif count == g1.NUM_BODY_JOINTS:
        joint_pos = dof
        mask = np.ones(g1.NUM_BODY_JOINTS, dtype=bool)
    else:
        raise ValueError(f"{what}: dof_pos has {count} joints; expected 23 (GMT order) or 29 (G1 motor order)")
    notes = []
    ignored = sorted(set(data) - set(_PICKLE_REQUIRED) - set(_PICKLE_IGNORED))
    if ignored:
        notes.append(f"ignored unknown keys {ignored}")
    return _clip_from_arrays(name, fps, root_pos, rotations.xyzw_to_wxyz(root_rot), joint_pos, mask, str(path), notes)


def _npz_text(arr: np.ndarray, key: str, what: str) -> str:
    if arr.shape != () or arr.dtype.kind != "U":
        raise ValueError(f"{what}: {key} must be a text scalar, got {arr.dtype} {arr.shape}")
    return str(arr)


def _load_npz_clip(path: Path) -> MotionClip:
    what = f"clip file {path}"
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"{what}: not a readable project .npz clip: {exc}") from None
    missing = [k for k in _NPZ_KEYS if k not in data]
    if missing:
        raise ValueError(f"{what}: missing keys {missing} (has {sorted(data)})")
    unknown = sorted(set(data) - set(_NPZ_KEYS))
    if unknown:
        raise ValueError(f"{what}: unknown keys {unknown}; schema {SCHEMA_VERSION} has {list(_NPZ_KEYS)}")
    version = data["schema_version"]
    if version.shape != () or version.dtype.kind not in "iu" or int(version) not in READABLE_SCHEMAS:
        raise ValueError(f"{what}: unsupported schema_version {version!r}; this gmt_ros reads "
                         f"{', '.join(map(str, READABLE_SCHEMAS))}")
    names = data["joint_names"]
    if names.dtype.kind != "U" or tuple(names.tolist()) != g1.JOINT_NAMES:
        got = names.tolist() if names.dtype.kind == "U" else repr(names)
        if isinstance(got, list) and len(got) == g1.NUM_BODY_JOINTS:
            k = next(i for i, (a, b) in enumerate(zip(got, g1.JOINT_NAMES)) if a != b)
            detail = f"slot {k} is {got[k]!r}, expected {g1.JOINT_NAMES[k]!r}"
        else:
            detail = f"got {got if not isinstance(got, list) else len(got)} names, expected the 29 G1 slot names"
        raise ValueError(f"{what}: joint_names are not the G1 motor-slot order ({detail})")
    name = _npz_text(data["name"], "name", what)
    source = _npz_text(data["source"], "source", what)
    notes = data["notes"]
    if notes.ndim != 1 or (notes.size and notes.dtype.kind != "U"):
        raise ValueError(f"{what}: notes must be a 1-D text array")
    mask = data["joint_mask"]
    if mask.dtype != bool:
        raise ValueError(f"{what}: joint_mask must be bool, got {mask.dtype}")
    what = f"clip {name!r} ({path})"
    fps = _check_fps(data["fps"], what)
    root_pos = _float_array(data["root_pos"], "root_pos", what, width=3)
    n = root_pos.shape[0]
    quat = _float_array(data["root_quat_wxyz"], "root_quat_wxyz", what, width=4, frames=n)
    if int(version) == 1:  # schema 1 stored unit quaternions
        norms = np.linalg.norm(quat, axis=1)
        if np.any(np.abs(norms - 1.0) > 1e-3):
            raise ValueError(f"{what}: root_quat_wxyz must be unit length in schema 1, "
                             f"|q| in [{norms.min():.4f}, {norms.max():.4f}]")
    else:
        _check_quat_norms(quat, "root_quat_wxyz", what)
    joint_pos = _float_array(data["joint_pos"], "joint_pos", what, width=g1.NUM_BODY_JOINTS, frames=n)
    if n < 2:
        raise ValueError(f"{what}: needs at least 2 frames, got {n}")
    return _clip_from_arrays(name, fps, root_pos, quat, joint_pos, mask, source,
                             [str(s) for s in notes.tolist()])


def load_clip(path: str | Path) -> MotionClip:
    """Load a .pkl (GMT/TWIST2) or .npz (project) clip; validated, repaired (see module doc)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"motion clip {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".pkl":
        return _load_pickle_clip(path, path.stem)
    if suffix == ".npz":
        return _load_npz_clip(path)
    raise ValueError(f"motion clip {path}: unsupported format {path.suffix!r} (expected .pkl or .npz)")


# ----------------------------------------------------------------------------- saving

def _npz_arrays(clip: MotionClip) -> dict[str, np.ndarray]:
    return {
        "schema_version": np.array(SCHEMA_VERSION, dtype=np.int32),
        "name": np.array(clip.name),
        "fps": np.array(clip.fps, dtype=np.float64),
        "root_pos": clip.root_pos.astype(np.float32),
        "root_quat_wxyz": clip.root_quat_stored.astype(np.float32),
        "joint_pos": clip.joint_pos.astype(np.float32),
        "joint_mask": clip.joint_mask.copy(),
        "joint_names": np.array(g1.JOINT_NAMES),
        "source": np.array(clip.source),
        "notes": np.array(clip.notes, dtype=str) if clip.notes else np.zeros(0, dtype="<U1"),
    }


def save_clip(clip: MotionClip, path: str | Path) -> Path:
    """Write the project .npz (schema 2). Byte-identical for identical clips (fixed zip
    timestamps), written to a temporary file and renamed so readers never see half a file."""
    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise ValueError(f"save_clip: {path} must end in .npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for key, arr in _npz_arrays(clip).items():
                buf = io.BytesIO()
                np.lib.format.write_array(buf, arr, allow_pickle=False)
                info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, buf.getvalue())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def convert_clip(in_path: str | Path, out_path: str | Path, source: str | None = None) -> MotionClip:
    """Load any supported clip and save it as project .npz; ``source`` overrides the recorded origin."""
    clip = load_clip(in_path)
    if source is not None:
        clip = MotionClip(name=clip.name, fps=clip.fps, root_pos=clip.root_pos, root_quat=clip.root_quat_stored,
                          joint_pos=clip.joint_pos, joint_mask=clip.joint_mask, source=source, notes=clip.notes)
    save_clip(clip, out_path)
    return clip


def clip_summary(clip: MotionClip) -> str:
    joints = f"{clip.num_joints} joints" + (" (wrists zero)" if clip.num_joints < g1.NUM_BODY_JOINTS else "")
    repairs = "; ".join(clip.notes) if clip.notes else "none"
    return (f"{clip.name}: {clip.num_frames} frames at {clip.fps:.2f} fps, {clip.duration:.2f} s, "
            f"{joints}; repairs: {repairs}")


def convert_main(argv: list[str]) -> int:
    """``gmt-ros convert IN OUT``: convert a clip to the project format and print a summary."""
    parser = argparse.ArgumentParser(prog="gmt-ros convert",
                                     description="Convert a GMT/TWIST2 .pkl (or project .npz) clip to project .npz.")
    parser.add_argument("input", help="clip to read (.pkl or .npz)")
    parser.add_argument("output", help="project clip to write (.npz)")
    parser.add_argument("--source", help="origin to record in the file (default: the input path)")
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():  # the summary line reports the repairs
            warnings.simplefilter("ignore", MotionRepairWarning)
            clip = convert_clip(args.input, args.output, source=args.source)
    except (ValueError, OSError) as exc:
        print(f"gmt-ros convert: error: {exc}", file=sys.stderr)
        return 1
    print(f"{clip_summary(clip)} -> {args.output}")
    return 0
