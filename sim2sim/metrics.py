"""Tracking metrics as in the GMT paper's Table 2, computed per control tick and averaged.

- e_mpjpe_rad: mean absolute joint-position error over the policy's joints that the clip supplies.
- e_mpkpe_mm: mean key-body position error, bodies taken relative to the root and rotated into the
  root's heading frame (so a drift in position or heading is not counted as a pose error).
  Key bodies: ``sim2sim.kinematics.KEY_BODIES``.
- e_vel_mps: root linear-velocity error, both velocities in their own heading frame.
- e_yaw_vel_radps: absolute error of the root's yaw rate (world z angular velocity).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gmt_ros.core import rotations


def heading_relative(body_pos: np.ndarray, root_pos: np.ndarray, root_quat: np.ndarray) -> np.ndarray:
    """Body positions (K,3) relative to the root, in the root's heading (yaw-only) frame."""
    return rotations.rotate_inverse(rotations.yaw_quat(root_quat), body_pos - root_pos)


def in_heading_frame(vec: np.ndarray, root_quat: np.ndarray) -> np.ndarray:
    return rotations.rotate_inverse(rotations.yaw_quat(root_quat), vec)


@dataclass
class TrackingErrors:
    """Accumulates per-tick errors; ``summary()`` gives the means."""

    mpjpe: list = field(default_factory=list)
    mpkpe: list = field(default_factory=list)
    vel: list = field(default_factory=list)
    yaw_vel: list = field(default_factory=list)

    def add(self, *, joint_pos, ref_joint_pos, joint_mask, body_rel, ref_body_rel,
            root_vel_heading, ref_root_vel_heading, yaw_rate, ref_yaw_rate) -> None:
        self.mpjpe.append(float(np.mean(np.abs(joint_pos - ref_joint_pos)[joint_mask])))
        self.mpkpe.append(float(np.mean(np.linalg.norm(body_rel - ref_body_rel, axis=-1))) * 1000.0)
        self.vel.append(float(np.linalg.norm(root_vel_heading - ref_root_vel_heading)))
        self.yaw_vel.append(float(abs(yaw_rate - ref_yaw_rate)))

    def summary(self) -> dict:
        def mean(x):
            return float(np.mean(x)) if x else float("nan")

        return {
            "e_mpjpe_rad": mean(self.mpjpe),
            "e_mpkpe_mm": mean(self.mpkpe),
            "e_vel_mps": mean(self.vel),
            "e_yaw_vel_radps": mean(self.yaw_vel),
        }


FALL_MIN_PELVIS_HEIGHT_M = 0.30  # deep squats in the shipped clips legitimately reach 0.41 m
FALL_MAX_TILT_RAD = 1.2


def has_fallen(pelvis_height: float, roll: float, pitch: float) -> bool:
    return pelvis_height < FALL_MIN_PELVIS_HEIGHT_M or abs(roll) > FALL_MAX_TILT_RAD or abs(pitch) > FALL_MAX_TILT_RAD
