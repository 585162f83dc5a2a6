"""GMT's observation, computed the way GMT's published deploy code computes it (test reference).

Written from zixuan417/humanoid-general-motion-tracking, commit f36ccfb, without reading gmt_ros's
builder; numpy in float32, because GMT runs its motion library and observation in float32 torch:

- ``utils/motion_lib.py`` ``MotionLib._load_motions``: root_pos, root_rot (x, y, z, w, as stored,
  never normalised) and dof_pos as float32; velocities ``fps * (x[i+1] - x[i])``, the last frame
  repeating the one before; angular velocity ``fps * quat_to_exp_map(quat_diff(r[i], r[i+1]))``;
  each smoothed by ``smooth(x, 19)``: a ``conv1d`` with a 19-tap box, ``padding='same'`` (zeros).
- ``MotionLib.calc_motion_frame``: time modulo the clip length, then ``_calc_frame_blend``: phase
  ``t / length`` clipped to [0, 1], ``frame_idx0 = long(phase * (num_frames - 1))``, ``idx1 =
  min(idx0 + 1, num_frames - 1)``, blend the remainder; positions and joints blended linearly, the
  rotation by ``slerp``, velocities of ``idx0`` unblended.
- ``utils/torch_utils.py``: ``quat_mul`` (x, y, z, w), ``quat_conjugate``, ``quat_to_angle_axis``
  (angle ``2 acos(w)`` wrapped by ``normalize_angle``, axis ``xyz / sqrt(1 - w^2)``, angle 0 where
  ``sqrt(1 - w^2) <= 1e-5``), ``slerp`` (with its midpoint for ``|sin(half angle)| < 0.001`` and
  ``q0`` for ``|cos| >= 1``).
- ``sim2sim.py`` ``HumanoidEnv._get_mimic_obs``: times ``tar_obs_steps * control_dt + step *
  control_dt`` (float32), per frame root height, ``euler_from_quaternion`` roll and pitch,
  ``quat_rotate_inverse(root_rot, root_vel)`` (3) and its angular counterpart's z, 23 joint
  positions; ``HumanoidEnv.run``: proprio = gyro * 0.25, ``quatToEuler(imu)[:2]``, q - default,
  dq * 0.05 with indices 4, 5, 10, 11 zeroed, the last raw action; the history a deque of 20
  zero vectors that gets this step's proprio appended after the observation is built;
  obs = mimic | proprio | flattened history, cast to float32.
"""
from __future__ import annotations

from collections import deque

import numpy as np

F = np.float32
CONTROL_DT = 0.001 * 20  # sim2sim.py: sim_dt * sim_decimation
TAR_OBS_STEPS = np.array([1, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75, 80, 85, 90, 95], dtype=np.int32)
HISTORY_LEN = 20
DEFAULT_DOF_POS = np.array([-0.2, 0.0, 0.0, 0.4, -0.2, 0.0, -0.2, 0.0, 0.0, 0.4, -0.2, 0.0, 0.0, 0.0, 0.0,
                            0.0, 0.4, 0.0, 1.2, 0.0, -0.4, 0.0, 1.2])  # float64, as in sim2sim.py
ANG_VEL_SCALE, DOF_VEL_SCALE = 0.25, 0.05
HIDDEN_DOF_VEL = [4, 5, 10, 11]


# ---------------------------------------------------------------- utils/torch_utils.py, in numpy

def quat_mul(a, b):
    x1, y1, z1, w1 = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    x2, y2, z2, w2 = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    ww = (z1 + x1) * (x2 + y2)
    yy = (w1 - y1) * (w2 + z2)
    zz = (w1 + y1) * (w2 - z2)
    xx = ww + yy + zz
    qq = F(0.5) * (xx + (z1 - x1) * (x2 - y2))
    w = qq - ww + (z1 - y1) * (y2 - z2)
    x = qq - xx + (x1 + w1) * (x2 + w2)
    y = qq - yy + (w1 - x1) * (y2 + z2)
    z = qq - zz + (z1 + y1) * (w2 - x2)
    return np.stack([x, y, z, w], axis=-1)


def quat_conjugate(a):
    return np.concatenate([-a[..., :3], a[..., 3:]], axis=-1)


def quat_to_exp_map(q):
    w = q[..., 3]
    with np.errstate(invalid="ignore"):
        sin_theta = np.sqrt(F(1) - w * w)
        angle = F(2) * np.arccos(w)
    angle = np.arctan2(np.sin(angle), np.cos(angle))  # normalize_angle
    with np.errstate(invalid="ignore", divide="ignore"):
        axis = q[..., :3] / sin_theta[..., None]
    mask = np.abs(sin_theta) > 1e-5
    default_axis = np.zeros_like(axis)
    default_axis[..., -1] = 1
    angle = np.where(mask, angle, F(0))
    axis = np.where(mask[..., None], axis, default_axis)
    return (angle[..., None] * axis).astype(F)


def slerp(q0, q1, t):
    """GMT's slerp; also returns where a shortcut decided the result: the midpoint branch
    (|sin(half angle)| < 0.001) or q0 (|cos(half angle)| >= 1 in float32)."""
    cos_half = np.sum(q0 * q1, axis=-1)
    q1 = np.where((cos_half < 0)[..., None], -q1, q1)
    cos_half = np.abs(cos_half)[..., None]
    with np.errstate(invalid="ignore"):
        half = np.arccos(cos_half)
        sin_half = np.sqrt(F(1) - cos_half * cos_half)
    t = t[..., None]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio_a = np.sin((F(1) - t) * half) / sin_half
        ratio_b = np.sin(t * half) / sin_half
    new_q = ratio_a * q0 + ratio_b * q1
    midpoint = np.abs(sin_half) < 0.001
    new_q = np.where(midpoint, F(0.5) * q0 + F(0.5) * q1, new_q)
    at_q0 = np.abs(cos_half) >= 1
    new_q = np.where(at_q0, q0, new_q)
    return new_q.astype(F), (midpoint | at_q0)[..., 0]


# ---------------------------------------------------------------- utils/motion_lib.py, in numpy

def smooth(x, box_pts=19):
    """conv1d with a box of ``box_pts`` taps, padding='same' (zeros beyond the ends)."""
    half = box_pts // 2
    padded = np.concatenate([np.zeros((half, x.shape[1]), F), x, np.zeros((half, x.shape[1]), F)])
    box = F(1.0 / box_pts)
    out = np.zeros_like(x)
    for j in range(box_pts):
        out += padded[j:j + len(x)] * box
    return out


class GmtMotion:
    """One clip loaded as ``MotionLib._load_motions`` loads it."""

    def __init__(self, data: dict):
        self.fps = data["fps"]
        fps = self.fps
        dt = 1.0 / fps
        self.root_pos = np.asarray(data["root_pos"], F)
        self.root_rot = np.asarray(data["root_rot"], F)  # x, y, z, w as stored
        self.dof_pos = np.asarray(data["dof_pos"], F)
        self.num_frames = self.root_pos.shape[0]
        self.length = F(dt * (self.num_frames - 1))
        ffps = F(fps)
        root_vel = np.zeros_like(self.root_pos)
        root_vel[:-1] = ffps * (self.root_pos[1:] - self.root_pos[:-1])
        root_vel[-1] = root_vel[-2]
        self.root_vel = smooth(root_vel)
        root_ang_vel = np.zeros_like(self.root_pos)
        drot = quat_mul(self.root_rot[1:], quat_conjugate(self.root_rot[:-1]))  # quat_diff(r[:-1], r[1:])
        root_ang_vel[:-1] = ffps * quat_to_exp_map(drot)
        root_ang_vel[-1] = root_ang_vel[-2]
        self.root_ang_vel = smooth(root_ang_vel)
        self.shortcut_samples = 0  # how often a slerp shortcut (midpoint or q0) decided a sample
        self.ties = 0  # samples within float32 rounding of a frame's time (see ``frame``)

    def frame(self, times, tie: str | None = None):
        """``calc_motion_frame`` for one motion: root_pos, root_rot, root_vel, root_ang_vel, dof_pos.

        ``tie``: where a time lies within float32 rounding (8 ulps) of a frame n, GMT's float32
        arithmetic decides between "frame n - 1 blended fully to n" (velocity of n - 1) and "frame
        n" (velocity of n; at the clip's end that is the loop's first frame). ``None`` computes as
        GMT does; ``"below"`` / ``"above"`` force one side at such times (``ties`` counts them)."""
        times = np.asarray(times, F).copy()
        loop = np.floor(times / self.length)
        times -= loop * self.length
        phase = np.clip(times / self.length, F(0), F(1))
        last = self.num_frames - 1
        scaled = (phase * F(last)).astype(F)
        idx0 = scaled.astype(np.int64)  # .long() truncates; phase >= 0
        blend = (scaled - idx0.astype(F)).astype(F)
        nearest = np.rint(scaled).astype(np.int64)
        at_tie = np.abs(scaled - nearest) <= 8 * np.spacing(F(last))  # float32's rounding of the index
        self.ties += int(at_tie.sum()) if tie is None else 0
        if tie == "below":
            below = at_tie & (nearest > 0)
            idx0, blend = np.where(below, nearest - 1, idx0), np.where(below, F(1), blend)
        elif tie == "above":
            idx0, blend = np.where(at_tie, nearest % last, idx0), np.where(at_tie, F(0), blend)
        idx1 = np.minimum(idx0 + 1, last)
        b = blend[:, None]
        root_pos = (F(1) - b) * self.root_pos[idx0] + b * self.root_pos[idx1]
        root_rot, shortcut = slerp(self.root_rot[idx0], self.root_rot[idx1], blend)
        self.shortcut_samples += int(shortcut.sum())
        dof_pos = (F(1) - b) * self.dof_pos[idx0] + b * self.dof_pos[idx1]
        return root_pos, root_rot, self.root_vel[idx0], self.root_ang_vel[idx0], dof_pos


# ---------------------------------------------------------------- sim2sim.py, in numpy

def euler_from_quaternion(q):
    x, y, z, w = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    roll = np.arctan2(F(2) * (w * x + y * z), F(1) - F(2) * (x * x + y * y))
    pitch = np.arcsin(np.clip(F(2) * (w * y - z * x), -1, 1))
    return roll, pitch


def quat_rotate_inverse(q, v):
    q_w, q_vec = q[:, -1], q[:, :3]
    a = v * (F(2) * q_w ** 2 - F(1))[:, None]
    b = np.cross(q_vec, v) * q_w[:, None] * F(2)
    c = q_vec * np.sum(q_vec * v, axis=-1, keepdims=True) * F(2)
    return a - b + c


def quat_to_euler_wxyz(quat):
    """sim2sim.py ``quatToEuler`` (w, x, y, z; float64): roll, pitch."""
    qw, qx, qy, qz = (float(v) for v in quat)
    roll = np.arctan2(2 * (qw * qx + qy * qz), 1 - 2 * (qx * qx + qy * qy))
    sinp = 2 * (qw * qy - qz * qx)
    pitch = np.copysign(np.pi / 2, sinp) if abs(sinp) >= 1 else np.arcsin(sinp)
    return np.array([roll, pitch])


class GmtObservation:
    """``HumanoidEnv``'s observation, step by step (``step`` is the control step counter)."""

    def __init__(self, motion: GmtMotion):
        self.motion = motion
        self.history = deque([np.zeros(3 + 2 + 3 * 23) for _ in range(HISTORY_LEN)], maxlen=HISTORY_LEN)

    def mimic(self, step: int, tie: str | None = None) -> np.ndarray:
        motion_time = np.array([step * CONTROL_DT], F)
        times = (TAR_OBS_STEPS.astype(F) * F(CONTROL_DT) + motion_time).astype(F)
        root_pos, root_rot, root_vel, root_ang_vel, dof_pos = self.motion.frame(times, tie)
        roll, pitch = euler_from_quaternion(root_rot)
        root_vel = quat_rotate_inverse(root_rot, root_vel)
        root_ang_vel = quat_rotate_inverse(root_rot, root_ang_vel)
        rows = np.concatenate([root_pos[:, 2:3], roll[:, None], pitch[:, None], root_vel, root_ang_vel[:, 2:3],
                               dof_pos], axis=-1)
        return rows.reshape(-1)

    def step(self, step: int, dof_pos, dof_vel, imu_quat_wxyz, gyro, last_action) -> np.ndarray:
        """The observation of control step ``step`` for a robot state in GMT's joint order."""
        dof_vel = np.asarray(dof_vel, F).copy()
        dof_vel[HIDDEN_DOF_VEL] = 0.0
        prop = np.concatenate([np.asarray(gyro, F) * ANG_VEL_SCALE, quat_to_euler_wxyz(imu_quat_wxyz),
                               np.asarray(dof_pos, F) - DEFAULT_DOF_POS, dof_vel * DOF_VEL_SCALE,
                               np.asarray(last_action, F)])
        hist = np.array(self.history).flatten()
        obs = np.concatenate([self.mimic(step), prop, hist]).astype(F)
        self.history.append(prop)
        return obs
