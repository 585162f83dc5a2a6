"""Pelvis height from the IMU and joint encoders alone (the robot has no height sensor).

Leg kinematics of the G1 model with the pelvis at the origin, oriented as the IMU says: the
lowest sole contact point is assumed to touch the floor, so the pelvis height is minus its z
(plus the sphere radius). Good while a foot is on the ground; when the robot falls it drops with
the tilt, which is what the fall check needs. Uses the same Menagerie G1 model as the simulator.
"""
from __future__ import annotations

import mujoco
import numpy as np

from gmt_ros.core.state import RobotState


class PelvisHeightEstimator:
    def __init__(self, model: mujoco.MjModel | None = None):
        from sim2sim.g1_model import build_g1_model, foot_sphere_geoms, g1_index

        self.model = build_g1_model() if model is None else model
        self.data = mujoco.MjData(self.model)
        idx = g1_index(self.model)
        self._root = idx.root_qpos
        self._jq = idx.joint_qpos
        self._soles = foot_sphere_geoms(self.model)
        self._radius = self.model.geom_size[self._soles, 0]

    def __call__(self, state: RobotState) -> float:
        d, r = self.data, self._root
        d.qpos[r:r + 3] = 0.0
        d.qpos[r + 3:r + 7] = np.asarray(state.imu_quat) / np.linalg.norm(state.imu_quat)
        d.qpos[self._jq] = state.joint_pos
        mujoco.mj_kinematics(self.model, d)
        lowest = np.min(d.geom_xpos[self._soles, 2] - self._radius)
        return float(-lowest)
