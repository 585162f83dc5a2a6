"""Pelvis height from the IMU and joint encoders alone (the robot has no height sensor).

Leg kinematics of the G1 with the pelvis at the origin, oriented as the IMU says: the lowest sole
contact point is assumed to touch the floor, so the pelvis height is minus its z (plus the contact
sphere's radius). Good while a foot is on the ground; when the robot falls it drops with the tilt,
which is what the fall check needs.

The chain below is the robot's geometry as a table (numpy only, no simulator in the core): body
offsets, fixed body rotations and joint axes from pelvis to ankle-roll link, and the four sole
contact spheres, as MuJoCo Menagerie's ``unitree_g1/g1.xml`` (the model the simulator runs) states
them. ``test/test_height_estimate.py`` checks the estimate against MuJoCo's own kinematics of that
model, so a model update that moves a link fails there.
"""
from __future__ import annotations

import numpy as np

from gmt_ros.core import g1
from gmt_ros.core.state import RobotState

# One leg from the pelvis down, as (child body, offset in the parent frame (m), body orientation
# quaternion w, x, y, z relative to the parent, joint, joint axis in the child frame). The right
# leg mirrors y. Source: g1.xml, bodies left_hip_pitch_link ... left_ankle_roll_link.
_LEFT_LEG = (
    ("left_hip_pitch_link", (0.0, 0.064452, -0.1027), (1.0, 0.0, 0.0, 0.0), "left_hip_pitch_joint", "y"),
    ("left_hip_roll_link", (0.0, 0.052, -0.030465), (0.996179, 0.0, -0.0873386, 0.0), "left_hip_roll_joint", "x"),
    ("left_hip_yaw_link", (0.025001, 0.0, -0.12412), (1.0, 0.0, 0.0, 0.0), "left_hip_yaw_joint", "z"),
    ("left_knee_link", (-0.078273, 0.0021489, -0.17734), (0.996179, 0.0, 0.0873386, 0.0), "left_knee_joint", "y"),
    ("left_ankle_pitch_link", (0.0, -9.4445e-05, -0.30001), (1.0, 0.0, 0.0, 0.0), "left_ankle_pitch_joint", "y"),
    ("left_ankle_roll_link", (0.0, 0.0, -0.017558), (1.0, 0.0, 0.0, 0.0), "left_ankle_roll_joint", "x"),
)
# Sole contact spheres (Menagerie's "foot" geom class) in the ankle-roll link frame, both feet.
SOLE_POINTS = np.array([[-0.05, 0.025, -0.03], [-0.05, -0.025, -0.03], [0.12, 0.03, -0.03], [0.12, -0.03, -0.03]])
SOLE_RADIUS = 0.005


def _quat_matrix(q) -> np.ndarray:
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def _mirror(name: str) -> str:
    return "right_" + name[len("left_"):]


def _axis_matrix(axis: int) -> np.ndarray:
    """The cross-product matrix K of a unit coordinate axis: a rotation by q about it is
    I + sin(q) K + (1 - cos(q)) K² (Rodrigues)."""
    k = np.zeros((3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    k[i, j], k[j, i] = -1.0, 1.0
    return k


def _chain() -> tuple[np.ndarray, ...]:
    """Per link k (6) and leg l (left, right): offsets (6, 2, 3); the link's fixed rotation F and
    F K, F K² for its joint axis (6, 2, 3, 3 each), so its full rotation is
    F + sin(q) F K + (1 - cos(q)) F K²; joint slots (6, 2)."""
    offsets, f, fk, fk2, slots = [], [], [], [], []
    for _body, pos, quat, joint, axis in _LEFT_LEG:
        offsets.append((np.array(pos), np.array(pos) * (1.0, -1.0, 1.0)))
        r, k = _quat_matrix(quat), _axis_matrix("xyz".index(axis))
        f.append((r, r))  # the fixed rotations are about y: the same on both sides
        fk.append((r @ k, r @ k))
        fk2.append((r @ k @ k, r @ k @ k))
        slots.append((g1.SLOT_OF[joint], g1.SLOT_OF[_mirror(joint)]))
    return np.array(offsets), np.array(f), np.array(fk), np.array(fk2), np.array(slots)


class PelvisHeightEstimator:
    """``estimator(state)`` -> pelvis height (m) above the lowest sole contact point.

    The bridge runs it on every robot state (500 Hz), so it is written for few numpy calls: all
    twelve joint rotations at once (Rodrigues), then the chain's six products for both legs together."""

    def __init__(self) -> None:
        self._offsets, self._f, self._fk, self._fk2, self._slots = _chain()

    def sole_points(self, imu_quat, joint_pos) -> np.ndarray:
        """Sole contact sphere centres (2 legs, 4, 3) relative to the pelvis, in the world
        orientation the IMU quaternion (w, x, y, z) gives."""
        q = np.asarray(joint_pos, dtype=np.float64)[self._slots]  # (6, 2)
        s, c = np.sin(q)[..., None, None], (1.0 - np.cos(q))[..., None, None]
        links = self._f + s * self._fk + c * self._fk2  # (6, 2, 3, 3): each link's rotation in its parent
        frames = np.empty((7, 2, 3, 3))  # frames[k]: the orientation the k-th offset is expressed in
        frames[0] = _quat_matrix(imu_quat)
        for k in range(6):
            np.matmul(frames[k], links[k], out=frames[k + 1])
        ankle = np.einsum("klij,klj->li", frames[:6], self._offsets)  # (2, 3): sum of rotated offsets
        return ankle[:, None, :] + np.einsum("lij,pj->lpi", frames[6], SOLE_POINTS)

    def __call__(self, state: RobotState) -> float:
        lowest = float(np.min(self.sole_points(state.imu_quat, state.joint_pos)[..., 2])) - SOLE_RADIUS
        return -lowest
