"""How a policy's reference motion is prepared: the reference conventions of a policy contract.

A tracking policy reads the reference through velocities and an orientation that its authors
computed one particular way; a deployment that computes them another way feeds a different
policy. The conventions are therefore part of the contract (``reference:`` in contract.yaml), as
named fields:

- ``velocity_difference``: ``forward`` — v[i] = (p[i+1] - p[i]) / dt, the last frame repeating the
  one before (GMT, ``utils/motion_lib.py`` ``MotionLib._load_motions``); ``central`` —
  (p[i+1] - p[i-1]) / 2dt inside, one-sided at the ends (TWIST2, ``pose/utils/motion_lib_pkl.py``
  ``MotionLib._add_motions``: ``torch.gradient`` and ``_compute_so3_derivative``). Angular velocity
  likewise from the relative rotation q[j] q[i]^-1 as a rotation vector (world frame).
- ``velocity_smoothing``: taps of a moving-average (box) filter over the source's frames, 1 = none
  (GMT: 19; TWIST2: none, its ``motion_smooth`` flag is never read).
- ``smoothing_padding``: what the filter sees beyond a clip's ends: ``zeros`` (GMT: ``conv1d``
  with ``padding='same'``, so velocities shrink towards 0 over the first and last 9 frames) or
  ``edge`` (the end value repeated).
- ``velocity_sampling``: between two clip frames, ``frame`` takes the velocity of the frame at or
  before the time, no interpolation (both authors: ``frame_idx0``); ``interpolate`` blends.
- ``quaternions``: ``as_stored`` — the clip's root quaternions exactly as the file has them
  (GMT's own pickles hold |q| 0.947-0.997) and the authors' formulas applied to them
  (slerp, Euler angles, ``quat_rotate_inverse``, exponential map; see below); ``normalized`` —
  unit quaternions.
- ``past_end``: sampling a clip past its end (or before its start): ``loop`` — time modulo the
  clip length (GMT's ``calc_motion_frame``); ``hold`` — the last (first) pose, zero velocity.

What the authors' formulas do with a quaternion of norm n != 1 (all exact for n = 1):
roll/pitch ``atan2(2(wx + yz), 1 - 2(x^2 + y^2))``, ``asin(2(wy - zx))`` (the same expressions as
``rotations.to_rpy``); ``quat_rotate_inverse(q, v) = (2w^2 - 1) v - 2w (u x v) + 2u (u . v)``, which
is R(q)^T v + 2 (n^2 - 1) v; slerp with ``acos(q0 . q1)`` of the raw dot product (it inflates the
norm between frames by up to ~1 %); the exponential map ``2 acos(w)`` with axis ``u / sqrt(1 - w^2)``
and 0 where ``sqrt(1 - w^2) <= 1e-5``. Here they are written from those facts, in float64.

Who follows the conventions: the clip (``MotionClip.frames/sample`` with a conventions argument),
the motion player (its windows, from the contract its ``contract`` parameter names), the window
decoder (velocities of a window that carries none; quaternions kept or normalised) and the
observation builder (the formulas above). A live window's ends are not the motion's ends: a
window without velocities gets the contract's difference and smoothing, padded with the edge value
at the window's ends (zero padding there would tell the policy that the motion stops now).

Two deliberate differences from the authors' code, both bounded by ``test/test_gmt_parity.py``:
their slerp returns the midpoint 0.5 (q0 + q1) whatever the blend when sin(half angle) < 0.001
(nearly identical frames of unit quaternions; it never fires on GMT's own stored quaternions,
whose products stay below 0.995); here the exact interpolation is used (the difference is at most
half the angle between the two frames, < 0.001 rad). And their frame index is computed in float32:
where a sample time lies within float32 rounding of a frame boundary the two may pick neighbouring
frames for the (unblended) velocity.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from gmt_ros.core import rotations

# Quaternion norms accepted from any source (clip file, wire): beyond this it is not a rotation
# stored with some drift but something else.
QUAT_NORM_RANGE = (0.8, 1.2)

_CHOICES = {
    "velocity_difference": ("forward", "central"),
    "smoothing_padding": ("zeros", "edge"),
    "velocity_sampling": ("frame", "interpolate"),
    "quaternions": ("as_stored", "normalized"),
    "past_end": ("loop", "hold"),
}
# A sample time this close below a frame's time (in frames) counts as that frame for ``frame``
# velocity sampling: 1e-6 frames is 33 ns at 30 fps, far below any clock, far above float64 noise.
_FRAME_SNAP = 1e-6


@dataclass(frozen=True)
class ReferenceConventions:
    """One way of preparing a reference motion; see the module docstring for each field."""

    velocity_difference: str
    velocity_smoothing: int
    smoothing_padding: str
    velocity_sampling: str
    quaternions: str
    past_end: str

    def __post_init__(self) -> None:
        for name, allowed in _CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"reference {name} must be one of {list(allowed)}, got {getattr(self, name)!r}")
        taps = self.velocity_smoothing
        if isinstance(taps, bool) or not isinstance(taps, int) or taps < 1 or taps % 2 == 0:
            raise ValueError(f"reference velocity_smoothing must be an odd number of taps >= 1 (1: none), got {taps!r}")

    @property
    def as_stored(self) -> bool:
        return self.quaternions == "as_stored"

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


PRESETS: dict[str, ReferenceConventions] = {
    # zixuan417/humanoid-general-motion-tracking, utils/motion_lib.py (MotionLib._load_motions,
    # calc_motion_frame, smooth) and utils/torch_utils.py, as sim2sim.py uses them.
    "gmt": ReferenceConventions("forward", 19, "zeros", "frame", "as_stored", "loop"),
    # amazon-far/TWIST2, deploy_real/server_motion_lib.py with pose/utils/motion_lib_pkl.py. Its
    # motion library also wraps time, but the deploy server never samples past the end: it
    # streams int(length / 0.02) steps and then eases to a default pose over 2 s (the player's
    # blend-out here); ``hold`` is that stream's end.
    "twist2": ReferenceConventions("central", 1, "edge", "frame", "as_stored", "hold"),
    # What the evaluation scores against (E_vel, E_yaw_vel, plots, the video's ghost): a smooth,
    # unit-quaternion reference the same for every policy.
    "scoring": ReferenceConventions("central", 19, "edge", "interpolate", "normalized", "hold"),
    # A window decoded without a contract (tools, tests): plain finite differences.
    "plain": ReferenceConventions("central", 1, "edge", "interpolate", "normalized", "hold"),
}
SCORING = PRESETS["scoring"]
PLAIN = PRESETS["plain"]


def parse_conventions(value: Any, what: str = "reference") -> ReferenceConventions:
    """A preset name (``gmt``), or a mapping ``{preset: NAME, field: value, ...}`` (a preset with
    some fields changed) or of all six fields. Raises ValueError naming the problem."""
    if isinstance(value, str):
        if value not in PRESETS:
            raise ValueError(f"{what}: unknown preset {value!r}; presets: {sorted(PRESETS)}")
        return PRESETS[value]
    if not isinstance(value, Mapping):
        raise ValueError(f"{what}: must be a preset name {sorted(PRESETS)} or a mapping of "
                         f"{[f.name for f in fields(ReferenceConventions)]}, got {value!r}")
    names = [f.name for f in fields(ReferenceConventions)]
    unknown = sorted(set(value) - set(names) - {"preset"})
    if unknown:
        raise ValueError(f"{what}: unknown field(s) {unknown}; fields: {names} (and 'preset')")
    base = {}
    if "preset" in value:
        base = parse_conventions(value["preset"], what).as_dict()
    base.update({k: v for k, v in value.items() if k != "preset"})
    missing = [n for n in names if n not in base]
    if missing:
        raise ValueError(f"{what}: missing field(s) {missing} (or name a preset to start from)")
    try:
        return ReferenceConventions(**base)
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None


# --------------------------------------------------------------------------- quaternion formulas

def exp_map(q: np.ndarray) -> np.ndarray:
    """Rotation vector of quaternions (..., 4) w, x, y, z by the authors' formula: angle
    2 acos(w) wrapped to (-pi, pi], axis u / sqrt(1 - w^2); 0 where sqrt(1 - w^2) <= 1e-5 (or w
    outside [-1, 1]). For a unit quaternion this is the usual rotation vector."""
    q = np.asarray(q, dtype=np.float64)
    w = q[..., 0]
    with np.errstate(invalid="ignore"):
        sin_half = np.sqrt(1.0 - w * w)
        angle = 2.0 * np.arccos(w)
    angle = np.where(angle > np.pi, angle - 2.0 * np.pi, angle)
    ok = sin_half > 1e-5  # False for NaN too (|w| > 1)
    scale = np.where(ok, angle / np.where(ok, sin_half, 1.0), 0.0)
    return q[..., 1:] * scale[..., None]


def slerp_as_stored(q0: np.ndarray, q1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The authors' slerp applied to quaternions as they are (no normalisation): weights
    sin((1 - t) h) / sin h and sin(t h) / sin h with h = acos(|q0 . q1|), q1 negated when the dot
    product is negative, q0 where |q0 . q1| >= 1. Where sin h < 1e-9 the linear weights (the
    limit); the authors' code returns the midpoint there (see the module docstring)."""
    q0 = np.asarray(q0, dtype=np.float64)
    q1 = np.asarray(q1, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)[..., None]
    dot = (q0 * q1).sum(axis=-1, keepdims=True)
    q1 = np.where(dot < 0.0, -q1, q1)
    c = np.minimum(np.abs(dot), 1.0)
    h = np.arccos(c)
    s = np.sqrt(1.0 - c * c)
    tiny = s < 1e-9
    safe = np.where(tiny, 1.0, s)
    wa = np.where(tiny, 1.0 - t, np.sin((1.0 - t) * h) / safe)
    wb = np.where(tiny, t, np.sin(t * h) / safe)
    out = wa * q0 + wb * q1
    return np.where(c >= 1.0, q0, out)


def slerp_keep_norm(q0: np.ndarray, q1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Shortest-arc slerp of the directions, norm blended linearly: unit in, unit out; a
    quaternion kept as stored stays continuous in norm (blends, window resampling)."""
    q0 = np.asarray(q0, dtype=np.float64)
    q1 = np.asarray(q1, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    n0 = np.sqrt((q0 * q0).sum(axis=-1))
    n1 = np.sqrt((q1 * q1).sum(axis=-1))
    unit = rotations.slerp(q0 / n0[..., None], q1 / n1[..., None], t)
    return unit * (n0 + (n1 - n0) * t)[..., None]


def rotate_inverse_as_stored(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``quat_rotate_inverse`` of the authors for any norm: R(q)^T v + 2 (|q|^2 - 1) v (the plain
    inverse rotation for a unit q)."""
    q = np.asarray(q, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    n2 = (q * q).sum(axis=-1, keepdims=True)
    return rotations.rotate(rotations.conjugate(q), v) + 2.0 * (n2 - 1.0) * v


# --------------------------------------------------------------------------- velocities

def _box(x: np.ndarray, taps: int, padding: str) -> np.ndarray:
    """Moving average over ``taps`` samples along axis 0, centred, ends padded per ``padding``."""
    if taps == 1:
        return x
    half = taps // 2
    if padding == "zeros":
        pad = np.zeros((half,) + x.shape[1:])
        padded = np.concatenate([pad, x, pad])
    else:
        padded = np.concatenate([np.repeat(x[:1], half, axis=0), x, np.repeat(x[-1:], half, axis=0)])
    csum = np.concatenate([np.zeros((1,) + x.shape[1:]), np.cumsum(padded, axis=0)])
    return (csum[taps:] - csum[:-taps]) / taps


def _differences(times: np.ndarray, root_pos, root_quat, joint_pos, difference: str):
    """Unsmoothed world linear, angular and joint velocities at each sample."""
    n = len(times)
    step = np.diff(times)
    if difference == "forward":
        lin = np.empty_like(root_pos)
        joint = np.empty_like(joint_pos)
        ang = np.empty((n, 3))
        lin[:-1] = np.diff(root_pos, axis=0) / step[:, None]
        joint[:-1] = np.diff(joint_pos, axis=0) / step[:, None]
        ang[:-1] = exp_map(rotations.multiply(root_quat[1:], rotations.conjugate(root_quat[:-1]))) / step[:, None]
        lin[-1], joint[-1], ang[-1] = lin[-2], joint[-2], ang[-2]
        return lin, ang, joint
    lin = np.gradient(root_pos, times, axis=0, edge_order=1)
    joint = np.gradient(joint_pos, times, axis=0, edge_order=1)
    ang = np.empty((n, 3))
    ang[0] = exp_map(rotations.multiply(root_quat[1], rotations.conjugate(root_quat[0]))) / step[0]
    ang[-1] = exp_map(rotations.multiply(root_quat[-1], rotations.conjugate(root_quat[-2]))) / step[-1]
    if n > 2:
        span = (times[2:] - times[:-2])[:, None]
        ang[1:-1] = exp_map(rotations.multiply(root_quat[2:], rotations.conjugate(root_quat[:-2]))) / span
    return lin, ang, joint


def source_velocities(times: np.ndarray, root_pos: np.ndarray, root_quat: np.ndarray, joint_pos: np.ndarray,
                      conventions: ReferenceConventions, padding: str | None = None):
    """World root linear / angular and joint velocities (each (T, k)) of a motion sampled at
    ``times`` (T >= 2, increasing), by the conventions' difference and smoothing. The quaternions
    are used as given (normalise them first for ``normalized`` conventions). ``padding``
    overrides the conventions' smoothing padding (a live window pads with the edge value)."""
    times = np.asarray(times, dtype=np.float64)
    if times.ndim != 1 or len(times) < 2 or not np.all(np.diff(times) > 0):
        raise ValueError("source_velocities: needs at least 2 strictly increasing times")
    lin, ang, joint = _differences(times, np.asarray(root_pos, np.float64), np.asarray(root_quat, np.float64),
                                   np.asarray(joint_pos, np.float64), conventions.velocity_difference)
    taps, pad = conventions.velocity_smoothing, padding or conventions.smoothing_padding
    return _box(lin, taps, pad), _box(ang, taps, pad), _box(joint, taps, pad)


# --------------------------------------------------------------------------- sampling a clip

def clip_frame_index(times: np.ndarray, fps: float, num_frames: int, past_end: str):
    """(index0, index1, blend, outside) for clip times (s): frame ``index0`` blended towards
    ``index1`` by ``blend``. ``loop`` wraps the time modulo the clip length (index1 at the last frame
    stays the last frame, as in GMT); ``hold`` clamps, and ``outside`` marks times beyond either end
    (their velocities are zero)."""
    t = np.asarray(times, dtype=np.float64)
    last = num_frames - 1
    x = t * fps  # in frames
    if past_end == "loop":  # a time on (within rounding of) a multiple of the length is the first frame
        x = x - np.floor((x + _FRAME_SNAP) / last) * last
        outside = np.zeros(t.shape, dtype=bool)
    else:
        outside = (t < 0.0) | (t > last / fps)
    x = np.clip(x, 0.0, float(last))
    i0 = np.minimum(np.floor(x + _FRAME_SNAP), last).astype(np.int64)
    blend = np.maximum(x - i0, 0.0)
    i1 = np.minimum(i0 + 1, last)
    return i0, i1, blend, outside
