"""The supervisor's fall check on one robot state: pelvis tilt from the IMU quaternion, joint
overspeed, and the pelvis height estimate (IMU + leg kinematics). Any of them -> damping.

The bridge's supervisor runs it on every rt/lowstate in its active modes; the offline evaluation
(``sim2sim.evaluate.run_episode``) runs the same check on every bridge tick, so its "fell" is what
the robot would get, detector included. The thresholds must sit outside what healthy tracking of
the shipped clips reaches (an air kick leans the pelvis 49 deg in its reference; under domain
randomisation upright runs recover from 57 deg) and inside what a fall passes through on the way
down: ``python -m sim2sim.fall_report`` measures both and recommends them.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gmt_ros.core import g1
from gmt_ros.core.state import RobotState

# Calibrated with `python -m sim2sim.fall_report` (every shipped clip, both starts, DR none, gmt and
# hard seeds 0-4: 286 runs): the 139 runs that stayed upright leaned the pelvis up to 56.6 deg
# (0.9 rad, the earlier default, would have damped 3 of them) and their height estimate went down
# to 0.398 m; the reference motions lean up to 49 deg. Tilt: the worst of those + 0.15 rad, on a
# 0.05 step; height: the lowest - 0.05 m. 119 of the 147 falls passed this tilt before the
# evaluation's own fall criterion (|roll| or |pitch| > 1.2 rad), the others by the height.
FALL_TILT_RAD = 1.15  # inclination of the pelvis z axis from vertical (66 deg)
FALL_HEIGHT_M = 0.30
OVERSPEED_FACTOR = 1.5  # measured |dq| above this x the motor's rated speed


def pelvis_tilt(quat) -> float:
    """Inclination (rad) of the pelvis z axis from vertical for an IMU quaternion w, x, y, z;
    NaN if the quaternion is unusable (not finite, or zero)."""
    w, x, y, z = (float(v) for v in quat)
    norm2 = w * w + x * x + y * y + z * z
    if not (math.isfinite(norm2) and norm2 > 1e-12):
        return math.nan
    # The pelvis z axis in the world is R[:, 2]; its vertical component is 1 - 2 (x^2 + y^2) / |q|^2.
    return math.acos(min(1.0, max(-1.0, 1.0 - 2.0 * (x * x + y * y) / norm2)))


@dataclass
class FallCheck:
    """``reason(state)``: why the robot must stop now, or None. ``tilt_rad=math.inf`` and
    ``height_m=-math.inf`` switch those two parts off (to measure without stopping);
    ``height_estimate`` None switches the height part off too. ``max_tilt_rad`` and
    ``min_height_m`` keep the extremes of the states checked so far (for calibration)."""

    tilt_rad: float = FALL_TILT_RAD
    height_m: float = FALL_HEIGHT_M
    overspeed_factor: float = OVERSPEED_FACTOR
    height_estimate: Callable[[RobotState], float] | None = None

    def __post_init__(self) -> None:
        if not (self.tilt_rad > 0 and not math.isnan(self.tilt_rad)):
            raise ValueError(f"fall check: tilt_rad must be > 0, got {self.tilt_rad!r}")
        if math.isnan(self.height_m) or self.height_m == math.inf:
            raise ValueError(f"fall check: height_m must be a number or -inf, got {self.height_m!r}")
        if not (math.isfinite(self.overspeed_factor) and self.overspeed_factor > 0):
            raise ValueError(f"fall check: overspeed_factor must be a positive number, got {self.overspeed_factor!r}")
        self.max_tilt_rad = 0.0
        self.min_height_m = math.inf

    def reason(self, state: RobotState) -> str | None:
        tilt = pelvis_tilt(state.imu_quat)
        if math.isnan(tilt):
            return f"IMU quaternion unusable: {[float(v) for v in state.imu_quat]}"
        self.max_tilt_rad = max(self.max_tilt_rad, tilt)
        if tilt > self.tilt_rad:
            return f"fall detected: tilt {math.degrees(tilt):.0f} deg > {math.degrees(self.tilt_rad):.0f} deg"
        speed = np.abs(state.joint_vel)
        limit = self.overspeed_factor * g1.DQ_MAX
        if np.any(speed > limit) or not np.all(np.isfinite(speed)):
            s = int(np.flatnonzero(~(speed <= limit))[0])
            return f"joint overspeed: {g1.JOINT_NAMES[s]} at {state.joint_vel[s]:+.1f} rad/s (limit {limit[s]:.1f})"
        if self.height_estimate is not None:
            h = float(self.height_estimate(state))
            if math.isfinite(h):
                self.min_height_m = min(self.min_height_m, h)
            if not h >= self.height_m:
                return f"fall detected: pelvis height estimate {h:.2f} m < {self.height_m:.2f} m"
        return None
