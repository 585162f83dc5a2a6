"""Forward kinematics of the G1's legs in numpy: where the feet are for a root pose and joint angles.

The planner needs foot positions and velocities (motion-matching features, contact detection)
in a process that has neither ROS nor MuJoCo loaded, so the two six-joint leg chains are written
out here. The numbers are the Menagerie ``unitree_g1`` model's body offsets (``pos``), fixed
rotations (``quat``) and joint axes, pelvis -> hip pitch -> hip roll -> hip yaw -> knee -> ankle
pitch -> ankle roll; the right leg mirrors the left in y. This is the one leg table of the core:
the bridge's pelvis-height estimate (``height_estimate``) uses it too. ``test_leg_kinematics``
and ``test_height_estimate`` check it against MuJoCo's ``mj_kinematics`` on the model itself.
The foot point is the ankle-roll link's origin (the sole's contact spheres sit 3 cm below it).
"""
from __future__ import annotations

import numpy as np

from gmt_ros.core import g1, rotations

FOOT_BODIES = ("left_ankle_roll_link", "right_ankle_roll_link")

# One leg from the pelvis down, as (child body, offset in the parent frame (m), body orientation
# quaternion w, x, y, z relative to the parent, joint, joint axis in the child frame). The right
# leg mirrors y. Source: g1.xml, bodies left_hip_pitch_link ... left_ankle_roll_link.
LEFT_LEG = (
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


def quat_matrix(q) -> np.ndarray:
    """The rotation matrix of one quaternion (w, x, y, z), normalized first."""
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


class LegChain:
    """Both legs' chains as arrays, for few numpy calls: per link k (6) and leg l (left, right)
    the offset (6, 2, 3), the link's fixed rotation F and F K, F K² for its joint axis (6, 2, 3, 3
    each), so that its rotation in its parent is F + sin(q) F K + (1 - cos(q)) F K², and the
    joint's motor slot (6, 2)."""

    def __init__(self) -> None:
        offsets, f, fk, fk2, slots = [], [], [], [], []
        for _body, pos, quat, joint, axis in LEFT_LEG:
            offsets.append((np.array(pos), np.array(pos) * (1.0, -1.0, 1.0)))
            r, k = quat_matrix(quat), _axis_matrix("xyz".index(axis))
            f.append((r, r))  # the fixed rotations are about y: the same on both sides
            fk.append((r @ k, r @ k))
            fk2.append((r @ k @ k, r @ k @ k))
            slots.append((g1.SLOT_OF[joint], g1.SLOT_OF[_mirror(joint)]))
        self.offsets, self.f, self.fk, self.fk2 = np.array(offsets), np.array(f), np.array(fk), np.array(fk2)
        self.slots = np.array(slots)

    def ankles(self, base_rot: np.ndarray, joint_pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ankle-roll link origins (..., 2, 3) relative to the pelvis and their orientations
        (..., 2, 3, 3), with the pelvis oriented as ``base_rot`` (..., 3, 3) for joint angles
        (..., 29) (left, right)."""
        q = np.asarray(joint_pos, dtype=np.float64)[..., self.slots]  # (..., 6, 2)
        s, c = np.sin(q)[..., None, None], (1.0 - np.cos(q))[..., None, None]
        links = self.f + s * self.fk + c * self.fk2  # (..., 6, 2, 3, 3): each link's rotation in its parent
        lead = links.shape[:-4]
        frames = np.empty((*lead, 7, 2, 3, 3))  # frames[..., k]: the orientation offset k is expressed in
        frames[..., 0, :, :, :] = np.asarray(base_rot)[..., None, :, :]
        for k in range(6):
            np.matmul(frames[..., k, :, :, :], links[..., k, :, :, :], out=frames[..., k + 1, :, :, :])
        ankle = np.einsum("...klij,klj->...li", frames[..., :6, :, :, :], self.offsets)  # sum of rotated offsets
        return ankle, frames[..., 6, :, :, :]


_CHAIN = LegChain()


def feet_in_pelvis(joint_pos: np.ndarray) -> np.ndarray:
    """Foot positions (N, 2, 3) in the pelvis frame (left, right) for joint angles (N, 29)."""
    q = np.atleast_2d(np.asarray(joint_pos, dtype=np.float64))
    if q.shape[-1] != g1.NUM_BODY_JOINTS:
        raise ValueError(f"joint_pos must have {g1.NUM_BODY_JOINTS} columns, got shape {q.shape}")
    return _CHAIN.ankles(np.eye(3), q)[0]


def foot_positions(root_pos: np.ndarray, root_quat: np.ndarray, joint_pos: np.ndarray) -> np.ndarray:
    """World foot positions (N, 2, 3) (left, right) for root poses (N, 3), (N, 4 w,x,y,z) and
    joint angles (N, 29)."""
    local = feet_in_pelvis(joint_pos)
    root_pos = np.atleast_2d(np.asarray(root_pos, dtype=np.float64))
    root_quat = np.atleast_2d(np.asarray(root_quat, dtype=np.float64))
    return rotations.rotate(root_quat[:, None, :], local) + root_pos[:, None, :]


CONTACT_HEIGHT_M = 0.01  # a foot this close to the lower foot's height may be on the ground too ...
CONTACT_VZ_MPS = 0.1  # ... if it is not rising or falling faster than this


def planted_foot_speeds(root_pos: np.ndarray, root_quat: np.ndarray, joint_pos: np.ndarray, dt: float,
                        contact_height: float = CONTACT_HEIGHT_M,
                        contact_vz: float = CONTACT_VZ_MPS) -> tuple[np.ndarray, np.ndarray]:
    """(horizontal foot speeds (N-1, 2) between consecutive frames, whether the foot was on the
    ground at both ends (N-1, 2)); see ``stance_slip``."""
    feet = foot_positions(root_pos, root_quat, joint_pos)
    lower = feet[..., 2].min(axis=1, keepdims=True)
    vz = np.abs(np.gradient(feet[..., 2], dt, axis=0)) if len(feet) > 1 else np.zeros(feet.shape[:2])
    contact = (feet[..., 2] < lower + contact_height) & (vz < contact_vz)
    speed = np.linalg.norm(np.diff(feet[..., :2], axis=0), axis=-1) / dt
    return speed, contact[:-1] & contact[1:]


def slip_summary(speeds: np.ndarray, planted: np.ndarray) -> dict:
    """Contact share and median, mean and 95th percentile of the planted feet's speeds (m/s)."""
    slips = speeds[planted]

    def stat(f):
        return round(float(f(slips)), 4) if slips.size else None

    return {"contact_share": round(float(planted.mean()), 3) if planted.size else None, "median_mps": stat(np.median),
            "mean_mps": stat(np.mean), "p95_mps": stat(lambda x: np.percentile(x, 95))}


def stance_slip(root_pos: np.ndarray, root_quat: np.ndarray, joint_pos: np.ndarray, dt: float,
                contact_height: float = CONTACT_HEIGHT_M, contact_vz: float = CONTACT_VZ_MPS) -> dict:
    """How much a motion's feet slide while on the ground: horizontal foot speed over the steps
    in which a foot is in contact at both ends. In walking one foot is always down, so a foot is
    taken as on the ground when it is within ``contact_height`` of the lower foot of its frame
    (clips disagree by centimetres about where the ground is, so no absolute height) and its
    height changes slower than ``contact_vz``. A clean reference plants its feet (speeds near
    0); retargeting, blends and root warping show up here (the shipped walking clips themselves:
    medians 0.06-0.24 m/s). Returns the share of foot-steps in contact and the median, mean and
    95th percentile slip speed (m/s)."""
    return slip_summary(*planted_foot_speeds(root_pos, root_quat, joint_pos, dt, contact_height, contact_vz))
