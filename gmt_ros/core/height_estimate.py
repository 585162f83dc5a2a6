"""Pelvis height from the IMU and joint encoders alone (the robot has no height sensor).

Leg kinematics of the G1 with the pelvis at the origin, oriented as the IMU says: the lowest sole
contact point is assumed to touch the floor, so the pelvis height is minus its z (plus the contact
sphere's radius). Good while a foot is on the ground; when the robot falls it drops with the tilt,
which is what the fall check needs.

The chain is the robot's geometry as a table (numpy only, no simulator in the core), kept once in
``leg_kinematics`` (the planner's foot kinematics use the same): body offsets, fixed body
rotations and joint axes from pelvis to ankle-roll link, and the four sole contact spheres, as
MuJoCo Menagerie's ``unitree_g1/g1.xml`` (the model the simulator runs) states them. ``test/test_height_estimate.py`` checks the estimate against MuJoCo's own kinematics of that
model, so a model update that moves a link fails there.
"""
from __future__ import annotations

import numpy as np

from gmt_ros.core.leg_kinematics import SOLE_POINTS, SOLE_RADIUS, LegChain, quat_matrix
from gmt_ros.core.state import RobotState

__all__ = ["SOLE_POINTS", "SOLE_RADIUS", "PelvisHeightEstimator"]


class PelvisHeightEstimator:
    """``estimator(state)`` -> pelvis height (m) above the lowest sole contact point.

    The bridge runs it on every robot state (500 Hz), so it is written for few numpy calls: all
    twelve joint rotations at once (Rodrigues), then the chain's six products for both legs together."""

    def __init__(self) -> None:
        self._chain = LegChain()

    def sole_points(self, imu_quat, joint_pos) -> np.ndarray:
        """Sole contact sphere centres (2 legs, 4, 3) relative to the pelvis, in the world
        orientation the IMU quaternion (w, x, y, z) gives."""
        ankle, rot = self._chain.ankles(quat_matrix(imu_quat), joint_pos)
        return ankle[:, None, :] + np.einsum("lij,pj->lpi", rot, SOLE_POINTS)

    def __call__(self, state: RobotState) -> float:
        lowest = float(np.min(self.sole_points(state.imu_quat, state.joint_pos)[..., 2])) - SOLE_RADIUS
        return -lowest
