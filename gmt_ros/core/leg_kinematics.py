"""Forward kinematics of the G1's legs in numpy: where the feet are for a root pose and joint angles.

The planner needs foot positions and velocities (motion-matching features, contact detection)
in a process that has neither ROS nor MuJoCo loaded, so the two six-joint leg chains are written
out here. The numbers are the Menagerie ``unitree_g1`` model's body offsets (``pos``), fixed
rotations (``quat``) and joint axes, pelvis -> hip pitch -> hip roll -> hip yaw -> knee -> ankle
pitch -> ankle roll; the right leg mirrors the left in y. ``test_leg_kinematics`` checks them
against MuJoCo's ``mj_kinematics`` on the model itself. The foot point is the ankle-roll link's
origin (the sole's contact spheres sit 3 cm below it).
"""
from __future__ import annotations

import numpy as np

from gmt_ros.core import g1, rotations

FOOT_BODIES = ("left_ankle_roll_link", "right_ankle_roll_link")

_X, _Y, _Z = np.eye(3)
_HIP_ROLL_TILT = np.array([0.996179, 0.0, -0.0873386, 0.0])  # w, x, y, z (about y, -10 deg)
_KNEE_TILT = np.array([0.996179, 0.0, 0.0873386, 0.0])


def _chain(side: float):
    """(offset from parent, fixed rotation or None, joint axis) per joint, pelvis to ankle roll."""
    return (
        (np.array([0.0, side * 0.064452, -0.1027]), None, _Y),  # hip pitch
        (np.array([0.0, side * 0.052, -0.030465]), _HIP_ROLL_TILT, _X),  # hip roll
        (np.array([0.025001, 0.0, -0.12412]), None, _Z),  # hip yaw
        (np.array([-0.078273, side * 0.0021489, -0.17734]), _KNEE_TILT, _Y),  # knee
        (np.array([0.0, side * -9.4445e-05, -0.30001]), None, _Y),  # ankle pitch
        (np.array([0.0, 0.0, -0.017558]), None, _X),  # ankle roll
    )


_LEGS = ((0, _chain(1.0)), (6, _chain(-1.0)))  # (first motor slot, chain): left, right


def _axis_rotation(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotation matrices (N, 3, 3) about a unit coordinate axis by angles (N,)."""
    c, s = np.cos(angle), np.sin(angle)
    n = angle.shape[0]
    out = np.zeros((n, 3, 3))
    i = int(np.argmax(axis))
    j, k = (i + 1) % 3, (i + 2) % 3
    out[:, i, i] = 1.0
    out[:, j, j] = c
    out[:, k, k] = c
    out[:, k, j] = s
    out[:, j, k] = -s
    return out


def feet_in_pelvis(joint_pos: np.ndarray) -> np.ndarray:
    """Foot positions (N, 2, 3) in the pelvis frame (left, right) for joint angles (N, 29)."""
    q = np.atleast_2d(np.asarray(joint_pos, dtype=np.float64))
    if q.shape[-1] != g1.NUM_BODY_JOINTS:
        raise ValueError(f"joint_pos must have {g1.NUM_BODY_JOINTS} columns, got shape {q.shape}")
    n = q.shape[0]
    out = np.empty((n, 2, 3))
    for leg, (first, chain) in enumerate(_LEGS):
        rot = np.broadcast_to(np.eye(3), (n, 3, 3))
        pos = np.zeros((n, 3))
        for k, (offset, fixed, axis) in enumerate(chain):
            pos = pos + rot @ offset
            if fixed is not None:
                rot = rot @ rotations.to_matrix(fixed)
            rot = rot @ _axis_rotation(axis, q[:, first + k])
        out[:, leg] = pos
    return out


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
