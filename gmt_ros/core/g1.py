"""The Unitree G1 (29-DoF body) in one table: motor slots, names, limits, default pose.

Every other module takes joint facts from here. Position and torque limits are the Menagerie
``unitree_g1`` model's (which match Unitree's URDF); velocity limits are the motor ratings from
Unitree's URDF (rad/s). Slots are the robot's ``motor_cmd``/``motor_state`` indices.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NUM_MOTOR_SLOTS = 35  # LowCmd_/LowState_ carry 35 motor entries; the body uses 0-28.
NUM_BODY_JOINTS = 29


@dataclass(frozen=True)
class Joint:
    slot: int
    name: str
    q_min: float
    q_max: float
    tau_max: float
    dq_max: float


def _j(slot, name, lo, hi, tau, vel):
    return Joint(slot, name, lo, hi, tau, vel)


JOINTS: tuple[Joint, ...] = (
    _j(0, "left_hip_pitch_joint", -2.5307, 2.8798, 88.0, 32.0),
    _j(1, "left_hip_roll_joint", -0.5236, 2.9671, 139.0, 20.0),
    _j(2, "left_hip_yaw_joint", -2.7576, 2.7576, 88.0, 32.0),
    _j(3, "left_knee_joint", -0.087267, 2.8798, 139.0, 20.0),
    _j(4, "left_ankle_pitch_joint", -0.87267, 0.5236, 50.0, 37.0),
    _j(5, "left_ankle_roll_joint", -0.2618, 0.2618, 50.0, 37.0),
    _j(6, "right_hip_pitch_joint", -2.5307, 2.8798, 88.0, 32.0),
    _j(7, "right_hip_roll_joint", -2.9671, 0.5236, 139.0, 20.0),
    _j(8, "right_hip_yaw_joint", -2.7576, 2.7576, 88.0, 32.0),
    _j(9, "right_knee_joint", -0.087267, 2.8798, 139.0, 20.0),
    _j(10, "right_ankle_pitch_joint", -0.87267, 0.5236, 50.0, 37.0),
    _j(11, "right_ankle_roll_joint", -0.2618, 0.2618, 50.0, 37.0),
    _j(12, "waist_yaw_joint", -2.618, 2.618, 88.0, 32.0),
    _j(13, "waist_roll_joint", -0.52, 0.52, 50.0, 37.0),
    _j(14, "waist_pitch_joint", -0.52, 0.52, 50.0, 37.0),
    _j(15, "left_shoulder_pitch_joint", -3.0892, 2.6704, 25.0, 37.0),
    _j(16, "left_shoulder_roll_joint", -1.5882, 2.2515, 25.0, 37.0),
    _j(17, "left_shoulder_yaw_joint", -2.618, 2.618, 25.0, 37.0),
    _j(18, "left_elbow_joint", -1.0472, 2.0944, 25.0, 37.0),
    _j(19, "left_wrist_roll_joint", -1.97222, 1.97222, 25.0, 37.0),
    _j(20, "left_wrist_pitch_joint", -1.61443, 1.61443, 5.0, 22.0),
    _j(21, "left_wrist_yaw_joint", -1.61443, 1.61443, 5.0, 22.0),
    _j(22, "right_shoulder_pitch_joint", -3.0892, 2.6704, 25.0, 37.0),
    _j(23, "right_shoulder_roll_joint", -2.2515, 1.5882, 25.0, 37.0),
    _j(24, "right_shoulder_yaw_joint", -2.618, 2.618, 25.0, 37.0),
    _j(25, "right_elbow_joint", -1.0472, 2.0944, 25.0, 37.0),
    _j(26, "right_wrist_roll_joint", -1.97222, 1.97222, 25.0, 37.0),
    _j(27, "right_wrist_pitch_joint", -1.61443, 1.61443, 5.0, 22.0),
    _j(28, "right_wrist_yaw_joint", -1.61443, 1.61443, 5.0, 22.0),
)
assert [j.slot for j in JOINTS] == list(range(NUM_BODY_JOINTS))

JOINT_NAMES: tuple[str, ...] = tuple(j.name for j in JOINTS)
SLOT_OF: dict[str, int] = {j.name: j.slot for j in JOINTS}
Q_MIN = np.array([j.q_min for j in JOINTS])
Q_MAX = np.array([j.q_max for j in JOINTS])
TAU_MAX = np.array([j.tau_max for j in JOINTS])
DQ_MAX = np.array([j.dq_max for j in JOINTS])

# GMT/TWIST 23-joint policies: both legs, all three waist joints, shoulders and elbows; no wrists.
GMT23_SLOTS: tuple[int, ...] = tuple(range(0, 19)) + tuple(range(22, 26))
GMT23_NAMES: tuple[str, ...] = tuple(JOINT_NAMES[s] for s in GMT23_SLOTS)
WRIST_SLOTS: tuple[int, ...] = (19, 20, 21, 26, 27, 28)
WAIST_SLOTS: tuple[int, ...] = (12, 13, 14)
ANKLE_SLOTS: tuple[int, ...] = (4, 5, 10, 11)

# The standing pose GMT and TWIST2 were trained around (knees bent, elbows at 1.2 rad).
_LEG = [-0.2, 0.0, 0.0, 0.4, -0.2, 0.0]
DEFAULT_POSE = np.array(
    _LEG + _LEG + [0.0, 0.0, 0.0] + [0.0, 0.4, 0.0, 1.2, 0.0, 0.0, 0.0] + [0.0, -0.4, 0.0, 1.2, 0.0, 0.0, 0.0]
)

# Damping: the terminal safe action on every body motor (kp 0, kd ~ 8 as Unitree stacks use).
DAMPING_KD = 8.0

# mode_machine values reported by G1 firmware and Unitree's simulators (checked at start-up: docs/SAFETY.md;
# Unitree's Python simulator reports 0: docs/UNITREE_MUJOCO.md).
MODE_MACHINE_23DOF = frozenset({1, 4})
MODE_MACHINE_29DOF = frozenset({2, 3, 5, 6})
MODE_MACHINE_ARMS_ONLY = frozenset({9})


def slots_of(names) -> np.ndarray:
    """Motor slots for joint names; an unknown name is an error that names it."""
    try:
        return np.array([SLOT_OF[n] for n in names], dtype=np.int64)
    except KeyError as exc:
        raise ValueError(f"unknown G1 joint name {exc.args[0]!r}; known: {', '.join(JOINT_NAMES)}") from None


def expand_to_29(values: np.ndarray, names, fill: np.ndarray | float = 0.0) -> np.ndarray:
    """Place per-joint values (last axis ordered as ``names``) into 29 slots, the rest ``fill``."""
    values = np.asarray(values, dtype=np.float64)
    out_shape = values.shape[:-1] + (NUM_BODY_JOINTS,)
    out = np.broadcast_to(np.asarray(fill, dtype=np.float64), out_shape).copy()
    out[..., slots_of(names)] = values
    return out
