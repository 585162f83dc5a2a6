"""Quaternion helpers on numpy arrays; quaternions are (w, x, y, z), batched on leading axes.

Written for the 50 Hz control step, where the arrays are tiny (one to twenty quaternions) and the
cost is the number of numpy calls (about a microsecond each, reductions and ``np.where`` several),
not the arithmetic: components are read with basic indexing (views, no ``moveaxis``), rotations are
written out per component instead of ``np.cross``, reductions are ndarray methods, and a single
quaternion's Euler angles are computed on Python floats. ``to_matrix`` gives the rotation matrices
for code that applies one rotation several times (the observation builder). Results are
bit-identical to the textbook expressions except where noted.
"""
from __future__ import annotations

import math

import numpy as np

_CONJUGATE = np.array([1.0, -1.0, -1.0, -1.0])


def normalize(q: np.ndarray) -> np.ndarray:
    """Unit quaternions with w >= 0 (one hemisphere, so interpolation never takes the long way)."""
    q = np.asarray(q, dtype=np.float64)
    n = np.sqrt((q * q).sum(axis=-1, keepdims=True))
    if n.size and not (n.min() >= 1e-9 and n.max() < np.inf):  # min() is NaN if any is: fails too
        raise ValueError("quaternion with zero or non-finite norm")
    return q * _hemisphere_sign(q[..., :1]) / n


def _hemisphere_sign(x: np.ndarray) -> np.ndarray:
    """-1 where x < 0, else +1 (also for x = -0.0, hence the + 0.0: -0.0 + 0.0 is +0.0)."""
    return np.copysign(1.0, x + 0.0)


def xyzw_to_wxyz(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q)
    return np.concatenate([q[..., 3:4], q[..., 0:3]], axis=-1)


def conjugate(q: np.ndarray) -> np.ndarray:
    return np.asarray(q, dtype=np.float64) * _CONJUGATE


def multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    aw, ax, ay, az = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bw, bx, by, bz = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def _product_to_matrix() -> np.ndarray:
    """(16, 9) map from the flattened products q_a q_b (a, b in w, x, y, z) to the 9 entries of the
    rotation matrix minus the identity: R = I + 2 [[-yy-zz, xy-wz, xz+wy], [xy+wz, -xx-zz, yz-wx],
    [xz-wy, yz+wx, -xx-yy]]."""
    w, x, y, z = range(4)
    terms = [[(y, y, -2), (z, z, -2)], [(x, y, 2), (w, z, -2)], [(x, z, 2), (w, y, 2)],
             [(x, y, 2), (w, z, 2)], [(x, x, -2), (z, z, -2)], [(y, z, 2), (w, x, -2)],
             [(x, z, 2), (w, y, -2)], [(y, z, 2), (w, x, 2)], [(x, x, -2), (y, y, -2)]]
    m = np.zeros((16, 9))
    for entry, products in enumerate(terms):
        for a, b, c in products:
            m[4 * a + b, entry] = c
    return m


_PRODUCTS_TO_MATRIX = _product_to_matrix()
_IDENTITY_FLAT = np.eye(3).reshape(9)


def to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) of unit quaternions: ``to_matrix(q) @ v == rotate(q, v)``.

    Three numpy calls whatever the batch size: all products q_a q_b, one constant linear map to
    the nine entries, plus the identity. Each entry is the textbook expression (e.g. R[2, 1] =
    2 (y z + w x), R[2, 2] = 1 - 2 (x² + y²)) to the last bit: the map's other coefficients are 0
    and its nonzero ones are ±2 (exact), so Euler angles read from R equal ``to_rpy``'s.
    """
    q = np.asarray(q, dtype=np.float64)
    products = (q[..., :, None] * q[..., None, :]).reshape(q.shape[:-1] + (16,))
    return (products @ _PRODUCTS_TO_MATRIX + _IDENTITY_FLAT).reshape(q.shape[:-1] + (3, 3))


def rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v by quaternions q (body → world when q is the body orientation)."""
    q = np.asarray(q, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    # v' = v + 2 w (u × v) + 2 u × (u × v), written out per component (np.cross is slow on tiny arrays)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    vx, vy, vz = v[..., 0], v[..., 1], v[..., 2]
    tx = 2.0 * (y * vz - z * vy)
    ty = 2.0 * (z * vx - x * vz)
    tz = 2.0 * (x * vy - y * vx)
    return np.stack(
        [vx + w * tx + (y * tz - z * ty), vy + w * ty + (z * tx - x * tz), vz + w * tz + (x * ty - y * tx)],
        axis=-1,
    )


def rotate_inverse(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Express world vectors v in the frame whose orientation is q (world → body)."""
    return rotate(conjugate(q), v)


def to_rpy(q: np.ndarray) -> np.ndarray:
    """Intrinsic Z-Y-X Euler angles (roll, pitch, yaw), as the robot's IMU reports them."""
    q = np.asarray(q, dtype=np.float64)
    if q.ndim == 1:  # one quaternion (the IMU, every control step): plain floats, ~10x fewer calls
        w, x, y, z = q.tolist()
        sin_pitch = min(max(2.0 * (w * y - z * x), -1.0), 1.0)  # NaN first: max/min pass it on
        return np.array([
            math.atan2(2.0 * (w * x + y * z), 1.0 - 2.0 * (x * x + y * y)),
            math.asin(sin_pitch),
            math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z)),
        ])
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    out = np.empty(q.shape[:-1] + (3,))
    out[..., 0] = np.arctan2(2.0 * (w * x + y * z), 1.0 - 2.0 * (x * x + y * y))
    out[..., 1] = np.arcsin(np.minimum(np.maximum(2.0 * (w * y - z * x), -1.0), 1.0))
    out[..., 2] = np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
    return out


def from_rpy(rpy: np.ndarray) -> np.ndarray:
    rpy = np.asarray(rpy, dtype=np.float64) * 0.5
    r, p, y = rpy[..., 0], rpy[..., 1], rpy[..., 2]
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    return np.stack(
        [
            cr * cp * cy + sr * sp * sy,
            sr * cp * cy - cr * sp * sy,
            cr * sp * cy + sr * cp * sy,
            cr * cp * sy - sr * sp * cy,
        ],
        axis=-1,
    )


def yaw_quat(q: np.ndarray) -> np.ndarray:
    """The heading-only part of q (rotation about world z)."""
    yaw = to_rpy(q)[..., 2]
    zeros = np.zeros_like(yaw)
    return np.stack([np.cos(yaw / 2), zeros, zeros, np.sin(yaw / 2)], axis=-1)


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    """Spherical interpolation from a to b at fraction t (shortest arc)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)[..., None] if np.ndim(t) else np.float64(t)
    dot = (a * b).sum(axis=-1, keepdims=True)
    sign = _hemisphere_sign(dot)  # interpolate towards b or -b, whichever is nearer to a
    theta = np.arccos(np.minimum(dot * sign, 1.0))
    sin_theta = np.sin(theta)
    if sin_theta.size and sin_theta.min() < 1e-6:  # (nearly) the same orientation somewhere
        near = sin_theta < 1e-6
        safe = np.where(near, 1.0, sin_theta)  # linear weights there, no division by ~0
        wa = np.where(near, 1.0 - t, np.sin((1.0 - t) * theta) / safe)
        wb = np.where(near, t, np.sin(t * theta) / safe)
    else:
        wa = np.sin((1.0 - t) * theta) / sin_theta
        wb = np.sin(t * theta) / sin_theta
    return normalize(wa * a + (wb * sign) * b)


def angular_velocity(q0: np.ndarray, q1: np.ndarray, dt: float, frame: str = "world") -> np.ndarray:
    """Angular velocity taking orientation q0 to q1 in dt seconds, in world or body (q0) frame."""
    if frame == "world":
        dq = multiply(q1, conjugate(q0))
    elif frame == "body":
        dq = multiply(conjugate(q0), q1)
    else:
        raise ValueError(f"frame must be 'world' or 'body', got {frame!r}")
    dq = normalize(dq)
    vec = dq[..., 1:]
    s = np.linalg.norm(vec, axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(s, dq[..., :1])
    axis = np.where(s > 1e-12, vec / np.where(s > 1e-12, s, 1.0), 0.0)
    return axis * angle / dt
