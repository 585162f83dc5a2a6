"""What the robot (or the simulator) reports, in robot motor-slot order."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gmt_ros.core import g1


@dataclass
class RobotState:
    """One sample of robot state.

    ``stamp`` is seconds on the receiver's monotonic clock; joint arrays have 29 entries in motor
    slot order; the IMU is the pelvis IMU: ``imu_quat`` (w, x, y, z) world←pelvis, ``imu_gyro``
    rad/s in the pelvis frame, ``imu_acc`` m/s² in the pelvis frame.
    """

    stamp: float
    joint_pos: np.ndarray
    joint_vel: np.ndarray
    imu_quat: np.ndarray
    imu_gyro: np.ndarray
    imu_acc: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 9.81]))
    joint_tau: np.ndarray = field(default_factory=lambda: np.zeros(g1.NUM_BODY_JOINTS))
    mode_machine: int = 0
    tick: int = 0

    def validate(self) -> None:
        """Raise ValueError naming the first field with a wrong shape or a non-finite value."""
        shapes = {
            "joint_pos": (g1.NUM_BODY_JOINTS,),
            "joint_vel": (g1.NUM_BODY_JOINTS,),
            "imu_quat": (4,),
            "imu_gyro": (3,),
            "imu_acc": (3,),
            "joint_tau": (g1.NUM_BODY_JOINTS,),
        }
        for name, shape in shapes.items():
            value = np.asarray(getattr(self, name))
            if value.shape != shape:
                raise ValueError(f"RobotState.{name} has shape {value.shape}, expected {shape}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"RobotState.{name} contains NaN or inf")
        if abs(np.linalg.norm(self.imu_quat) - 1.0) > 0.05:
            raise ValueError(f"RobotState.imu_quat is not a unit quaternion (|q| = {np.linalg.norm(self.imu_quat):.3f})")
