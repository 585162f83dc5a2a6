"""Motion-matching database over locomotion clips: frames, their features, and the search.

Every clip is resampled onto the planner's step (``dt``, 0.02 s) and also mirrored left-right
(``mirror_clip``: the data has sidesteps and turns mostly one way). Each frame is stored in the
clip's own heading frame (the yaw of the pelvis removed), so a frame can be played from any
world position and heading:

- what the planner outputs: joint angles and velocities, pelvis height, the pelvis tilt
  (``local_quat``: orientation with the heading removed), linear and angular velocity in the
  heading frame (the clip's smoothed ones, the convention of ``gmt_ros.core.motion``);
- how it moves on: ``step`` (dx, dy, dyaw) to the next frame, in the frame's heading frame;
- ``mean_vel``: vx, vy, wz averaged over ``MEAN_VEL_S`` centred on the frame (one gait cycle:
  the pelvis sways within a step, a command is a mean);
- feature rows (search): the future root trajectory at ``TRAJECTORY_OFFSETS_S`` (x, y and the
  heading direction in the current heading frame), both feet (position relative to the pelvis
  and velocity, heading frame, ``gmt_ros.core.leg_kinematics``), the pelvis velocity and the
  waist and arm joint angles.

A frame is *searchable* when its clip has ``future_s`` more seconds after it (so a stream started
there can play on through a blend and the next search) and its pelvis is upright at a walking
height (``height_range``, ``max_tilt``: crouches and squats inside the walking clips are not
locomotion). One synthetic clip, ``standing``, is the default pose at ``standing_height`` with
no motion: a stream on it stays on its single frame. It is not searchable: the planner enters it
by its stop rule (zero command), never because a walking query happened to be near it.

Search: ``best(query, exclude)`` returns the searchable frame whose weighted feature distance to
the query is smallest. Each feature group is divided by its standard deviation over the database
and multiplied by its weight (``FeatureWeights``), so weights are relative importances.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from gmt_ros.core import g1, rotations
from gmt_ros.core.leg_kinematics import feet_in_pelvis
from gmt_ros.core.motion import MotionClip

TRAJECTORY_OFFSETS_S = (0.3, 0.6, 1.0)
MEAN_VEL_S = 1.0
STANDING = "standing"


def _mirror_table() -> tuple[np.ndarray, np.ndarray]:
    """(source slot, sign) of every slot of the mirrored pose: left <-> right, roll and yaw joints
    negated (their axes are x and z on both sides; the sagittal plane flips y)."""
    source = np.arange(g1.NUM_BODY_JOINTS)
    sign = np.ones(g1.NUM_BODY_JOINTS)
    for slot, name in enumerate(g1.JOINT_NAMES):
        if name.startswith("left_"):
            source[slot] = g1.SLOT_OF["right_" + name[5:]]
        elif name.startswith("right_"):
            source[slot] = g1.SLOT_OF["left_" + name[6:]]
        if "_roll_" in name or "_yaw_" in name:
            sign[slot] = -1.0
    return source, sign


MIRROR_SOURCE, MIRROR_SIGN = _mirror_table()


def mirror_joints(joint_pos: np.ndarray) -> np.ndarray:
    """Joint angles (..., 29) of the left-right mirrored pose."""
    return np.asarray(joint_pos)[..., MIRROR_SOURCE] * MIRROR_SIGN


def mirror_clip(clip: MotionClip) -> MotionClip:
    """The clip mirrored in the pelvis's sagittal plane at the world origin (y -> -y)."""
    q = np.array(clip.root_quat)
    q[:, 1] *= -1.0  # mirroring y: x and z rotation components change sign
    q[:, 3] *= -1.0
    pos = np.array(clip.root_pos)
    pos[:, 1] *= -1.0
    return MotionClip(name=clip.name + "~mirror", fps=clip.fps, root_pos=pos, root_quat=q,
                      joint_pos=mirror_joints(clip.joint_pos), joint_mask=clip.joint_mask[MIRROR_SOURCE].copy(),
                      source=clip.source, notes=list(clip.notes) + ["mirrored left-right"])


@dataclass(frozen=True)
class FeatureWeights:
    trajectory_position: float = 1.0
    trajectory_direction: float = 1.0
    foot_position: float = 0.75
    foot_velocity: float = 0.75
    root_velocity: float = 1.0
    upper_body: float = 0.1


@dataclass(frozen=True)
class Query:
    """What the planner asks for: the future trajectory (positions (K,2) and heading directions
    (K,2) at TRAJECTORY_OFFSETS_S, in the current heading frame) and the current pose features
    (raw, as ``pose_features`` returns them)."""

    positions: np.ndarray
    directions: np.ndarray
    pose: np.ndarray


# Column groups of the raw feature vector.
_K = len(TRAJECTORY_OFFSETS_S)
_GROUPS = {
    "trajectory_position": slice(0, 2 * _K),
    "trajectory_direction": slice(2 * _K, 4 * _K),
    "foot_position": slice(4 * _K, 4 * _K + 6),
    "foot_velocity": slice(4 * _K + 6, 4 * _K + 12),
    "root_velocity": slice(4 * _K + 12, 4 * _K + 15),
    "upper_body": slice(4 * _K + 15, 4 * _K + 15 + 11),
}
# Waist and arm joints (not the wrists, which 23-joint clips lack): the clips hold their arms
# differently, and a blend between two arm carriages moves the shoulders fast.
UPPER_BODY_SLOTS = np.array([12, 13, 14, 15, 16, 17, 18, 22, 23, 24, 25])
POSE_COLUMNS = slice(4 * _K, 4 * _K + 26)
FEATURE_WIDTH = 4 * _K + 26


def _yaw(q: np.ndarray) -> np.ndarray:
    return rotations.to_rpy(q)[..., 2]


def _rotate_z(angle: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate xy of v (..., >=2) by angle (...) about z; returns (..., 2)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([c * v[..., 0] - s * v[..., 1], s * v[..., 0] + c * v[..., 1]], axis=-1)


@dataclass
class ClipFrames:
    """One clip resampled at dt, in heading frames (see the module docstring)."""

    name: str
    joint_pos: np.ndarray  # (T, 29)
    joint_vel: np.ndarray  # (T, 29)
    height: np.ndarray  # (T,)
    local_quat: np.ndarray  # (T, 4) pelvis orientation without heading
    lin_vel: np.ndarray  # (T, 3) heading frame
    ang_vel: np.ndarray  # (T, 3) heading frame
    step: np.ndarray  # (T, 3) dx, dy (heading frame of the frame), dyaw to the next frame; 0 at the end
    mean_vel: np.ndarray  # (T, 3) vx, vy, wz over MEAN_VEL_S centred
    features: np.ndarray  # (T, FEATURE_WIDTH) raw; trajectory columns NaN where the future is missing
    searchable: np.ndarray  # (T,) bool
    static: bool = False

    def __len__(self) -> int:
        return int(self.height.shape[0])


def _frames_of(clip: MotionClip, dt: float, future_s: float, height_range, max_tilt: float) -> ClipFrames:
    n = int(math.floor(clip.duration / dt + 1e-9)) + 1
    f = clip.sample(np.arange(n) * dt)
    yaw = np.unwrap(_yaw(f.root_quat))
    yaw_q = np.stack([np.cos(yaw / 2), np.zeros(n), np.zeros(n), np.sin(yaw / 2)], axis=-1)
    local_quat = rotations.normalize(rotations.multiply(rotations.conjugate(yaw_q), f.root_quat))
    lin_vel = rotations.rotate_inverse(yaw_q, f.root_lin_vel)
    ang_vel = rotations.rotate_inverse(yaw_q, f.root_ang_vel)

    step = np.zeros((n, 3))
    step[:-1, :2] = _rotate_z(-yaw[:-1], f.root_pos[1:] - f.root_pos[:-1])
    step[:-1, 2] = np.diff(yaw)

    half = int(round(MEAN_VEL_S / dt / 2))
    mean_vel = np.zeros((n, 3))
    for i in range(n):
        a, b = max(0, i - half), min(n - 1, i + half)
        if b > a:
            mean_vel[i, :2] = _rotate_z(-0.5 * (yaw[a] + yaw[b]), f.root_pos[b] - f.root_pos[a]) / ((b - a) * dt)
            mean_vel[i, 2] = (yaw[b] - yaw[a]) / ((b - a) * dt)

    features = np.full((n, FEATURE_WIDTH), np.nan)
    for k, offset in enumerate(TRAJECTORY_OFFSETS_S):
        j = int(round(offset / dt))
        if j < n:
            features[:n - j, 2 * k:2 * k + 2] = _rotate_z(-yaw[:n - j], f.root_pos[j:] - f.root_pos[:n - j])
            d = yaw[j:] - yaw[:n - j]
            features[:n - j, 2 * _K + 2 * k:2 * _K + 2 * k + 2] = np.stack([np.cos(d), np.sin(d)], axis=-1)
    feet = rotations.rotate(local_quat[:, None, :], feet_in_pelvis(f.joint_pos))  # heading frame, rel. pelvis
    world_feet = _rotate_z(yaw[:, None], feet)
    world_feet = np.concatenate([world_feet + f.root_pos[:, None, :2], feet[..., 2:] + f.root_pos[:, None, 2:]], axis=-1)
    feet_vel_world = np.gradient(world_feet, dt, axis=0) if n > 1 else np.zeros_like(world_feet)
    feet_vel = np.concatenate([_rotate_z(-yaw[:, None], feet_vel_world), feet_vel_world[..., 2:]], axis=-1)
    features[:, _GROUPS["foot_position"]] = feet.reshape(n, 6)
    features[:, _GROUPS["foot_velocity"]] = feet_vel.reshape(n, 6)
    features[:, _GROUPS["root_velocity"]] = np.concatenate([lin_vel[:, :2], ang_vel[:, 2:]], axis=1)
    features[:, _GROUPS["upper_body"]] = f.joint_pos[:, UPPER_BODY_SLOTS]

    rpy = rotations.to_rpy(local_quat)
    upright = (np.abs(rpy[:, 0]) <= max_tilt) & (np.abs(rpy[:, 1]) <= max_tilt)
    in_height = (f.root_pos[:, 2] >= height_range[0]) & (f.root_pos[:, 2] <= height_range[1])
    ok = upright & in_height
    # searchable: this frame and the next future_s seconds are all walking frames
    horizon = int(math.ceil(future_s / dt))
    searchable = np.zeros(n, dtype=bool)
    if n > horizon:
        run = np.convolve(ok.astype(np.int64), np.ones(horizon + 1, dtype=np.int64), mode="valid")
        searchable[:n - horizon] = run == horizon + 1
    searchable &= np.all(np.isfinite(features), axis=1)
    return ClipFrames(clip.name, np.array(f.joint_pos), np.array(f.joint_vel), np.array(f.root_pos[:, 2]),
                      local_quat, lin_vel, ang_vel, step, mean_vel, features, searchable)


def standing_frames(standing_height: float, default_pose: np.ndarray | None = None) -> ClipFrames:
    """The synthetic standing clip: one frame of the default pose, level, no motion."""
    pose = np.array(g1.DEFAULT_POSE if default_pose is None else default_pose, dtype=np.float64)[None]
    feet = feet_in_pelvis(pose)
    features = np.zeros((1, FEATURE_WIDTH))
    for k in range(_K):
        features[0, 2 * _K + 2 * k] = 1.0  # heading unchanged: direction (1, 0)
    features[0, _GROUPS["foot_position"]] = feet.reshape(6)
    features[0, _GROUPS["upper_body"]] = pose[0, UPPER_BODY_SLOTS]
    zeros3 = np.zeros((1, 3))
    return ClipFrames(STANDING, pose, np.zeros_like(pose), np.array([float(standing_height)]),
                      np.array([[1.0, 0.0, 0.0, 0.0]]), zeros3, zeros3.copy(), zeros3.copy(), zeros3.copy(),
                      features, np.array([True]), static=True)


class MotionDatabase:
    """All frames of all clips in flat arrays (global frame index g), with per-clip bounds.

    ``clip_of[g]``, ``next_of[g]`` (the following frame of the same clip; -1 after the last; a
    static clip's frame is its own next), ``start_of[c]``. Arrays named like ``ClipFrames``'s
    fields are the concatenations. ``standing`` is the global index of the standing frame.
    """

    # the concatenations of ClipFrames' arrays (set in __init__ from its fields)
    joint_pos: np.ndarray
    joint_vel: np.ndarray
    height: np.ndarray
    local_quat: np.ndarray
    lin_vel: np.ndarray
    ang_vel: np.ndarray
    step: np.ndarray
    mean_vel: np.ndarray
    features: np.ndarray
    searchable: np.ndarray

    def __init__(self, clips: list[ClipFrames], dt: float, weights: FeatureWeights = FeatureWeights()):
        if not clips:
            raise ValueError("motion database: no clips")
        names = [c.name for c in clips]
        if len(set(names)) != len(names):
            raise ValueError(f"motion database: duplicate clip names in {names}")
        if names.count(STANDING) != 1:
            raise ValueError("motion database: needs exactly one standing clip")
        self.clip_names = tuple(names)
        self.dt = float(dt)
        self.clips = list(clips)
        for fld in fields(ClipFrames):
            if fld.name in ("name", "static"):
                continue
            setattr(self, fld.name, np.concatenate([getattr(c, fld.name) for c in clips]))
        lengths = np.array([len(c) for c in clips])
        self.start_of = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        self.clip_of = np.repeat(np.arange(len(clips)), lengths)
        self.next_of = np.arange(len(self.clip_of)) + 1
        for c, clip in enumerate(clips):
            last = self.start_of[c] + lengths[c] - 1
            self.next_of[last] = last if clip.static else -1
        self.standing = int(self.start_of[names.index(STANDING)])
        self.searchable[self.standing] = False  # standing is entered by the planner's stop rule only
        self.weights = weights
        self._scale = np.zeros(FEATURE_WIDTH)
        searchable = self.searchable
        if not np.any(searchable):
            raise ValueError("motion database: no searchable frame")
        raw = self.features[searchable]
        for group, cols in _GROUPS.items():
            spread = float(np.nanstd(raw[:, cols]))
            self._scale[cols] = getattr(weights, group) / max(spread, 1e-6)
        self._index = np.flatnonzero(searchable)
        self._normalized = raw * self._scale

    @classmethod
    def build(cls, clips: list[MotionClip], dt: float = 0.02, mirror: bool = True, future_s: float = 1.5,
              height_range=(0.70, 0.88), max_tilt: float = 0.35, standing_height: float = 0.78,
              default_pose: np.ndarray | None = None, weights: FeatureWeights = FeatureWeights()) -> MotionDatabase:
        if not (math.isfinite(dt) and dt > 0):
            raise ValueError(f"dt must be positive, got {dt}")
        if future_s < max(TRAJECTORY_OFFSETS_S):
            raise ValueError(f"future_s {future_s} must cover the trajectory features ({max(TRAJECTORY_OFFSETS_S)} s)")
        frames = []
        for clip in clips:
            sources = [clip, mirror_clip(clip)] if mirror else [clip]
            frames += [_frames_of(c, dt, future_s, height_range, max_tilt) for c in sources]
        frames.append(standing_frames(standing_height, default_pose))
        return cls(frames, dt, weights)

    def __len__(self) -> int:
        return int(self.clip_of.shape[0])

    @property
    def searchable_count(self) -> int:
        return int(self._index.shape[0])

    def describe(self, g: int) -> str:
        """'clip@seconds' of a global frame index (for logs)."""
        c = int(self.clip_of[g])
        return f"{self.clip_names[c]}@{(g - self.start_of[c]) * self.dt:.2f}s"

    def query_vector(self, query: Query) -> np.ndarray:
        raw = np.concatenate([np.asarray(query.positions).reshape(-1), np.asarray(query.directions).reshape(-1),
                              np.asarray(query.pose).reshape(-1)])
        if raw.shape != (FEATURE_WIDTH,):
            raise ValueError(f"query has {raw.shape[0]} features, expected {FEATURE_WIDTH}")
        return raw * self._scale

    def cost(self, query: Query, g: int) -> float:
        """Weighted squared feature distance of frame g to the query (inf if g is not searchable)."""
        if not self.searchable[g]:
            return math.inf
        diff = self.features[g] * self._scale - self.query_vector(query)
        return float(diff @ diff)

    def best(self, query: Query, exclude: tuple[int, int] | None = None) -> tuple[int, float]:
        """(global index, cost) of the nearest searchable frame; ``exclude`` = (first, last)
        global indices (inclusive) not to return (the neighbourhood of the playing frame)."""
        q = self.query_vector(query)
        diff = self._normalized - q
        costs = np.einsum("ij,ij->i", diff, diff)
        if exclude is not None:
            lo, hi = np.searchsorted(self._index, [exclude[0], exclude[1] + 1])
            costs[lo:hi] = np.inf
        i = int(np.argmin(costs))
        return int(self._index[i]), float(costs[i])

    def pose_features(self, g: int) -> np.ndarray:
        """The raw pose features (feet, pelvis velocity) of frame g."""
        return self.features[g, POSE_COLUMNS]
