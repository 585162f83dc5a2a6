"""How fast the robot is really walking, from its own sensors: leg kinematics and the pelvis IMU.

The G1 measures no base velocity. While walking, one foot is always on the ground, and a
foot on the ground does not move: the pelvis moves by the opposite of that foot's displacement
relative to the pelvis, in world axes (the IMU's orientation rotates the leg kinematics of
``gmt_ros.core.leg_kinematics`` into them). Summed over a gait cycle (``average_s``, 1 s) and
expressed in the heading frame, that is the robot's walking velocity; the yaw rate is the IMU
heading's change over the same second. Which foot is on the ground: the lower one in world
axes. A gap in the samples (> ``max_gap_s``) starts the average over.

The planner uses it to correct a tracking policy's speed bias (``VelocityFeedback``): the
shipped TWIST2 student walks some clips at 0.6-0.9 of the reference's speed and sidesteps at
0.2-0.7 of it (docs/PLANNER.md).
"""
from __future__ import annotations

import math
from collections import deque

import numpy as np

from gmt_ros.core import rotations
from gmt_ros.core.leg_kinematics import feet_in_pelvis


class LegOdometry:
    def __init__(self, average_s: float = 1.0, max_gap_s: float = 0.1):
        if not (math.isfinite(average_s) and average_s > 0 and math.isfinite(max_gap_s) and max_gap_s > 0):
            raise ValueError(f"average_s and max_gap_s must be positive, got {average_s}, {max_gap_s}")
        self.average_s = float(average_s)
        self.max_gap_s = float(max_gap_s)
        self._history: deque[tuple[float, float, float, float]] = deque()  # t, x, y, yaw (unwrapped)
        self._last: tuple[float, np.ndarray, float] | None = None  # t, feet (2, 3) world axes rel. pelvis, yaw

    def reset(self) -> None:
        self._history.clear()
        self._last = None

    def update(self, t: float, joint_pos: np.ndarray, imu_quat: np.ndarray) -> None:
        """One sample: time (s), 29 joint angles, pelvis orientation (w, x, y, z, world <- pelvis)."""
        q = np.asarray(imu_quat, dtype=np.float64)
        feet = rotations.rotate(q, feet_in_pelvis(joint_pos)[0])
        yaw = float(rotations.to_rpy(q)[2])
        last = self._last
        if last is not None and 0.0 < t - last[0] <= self.max_gap_s and self._history:
            stance = int(np.argmin(feet[:, 2]))
            step = last[1][stance, :2] - feet[stance, :2]  # the planted foot stays: the pelvis moves the other way
            yaw = last[2] + math.remainder(yaw - last[2], 2.0 * math.pi)
            _, x, y, _ = self._history[-1]
            self._history.append((float(t), x + float(step[0]), y + float(step[1]), yaw))
        else:
            self._history.clear()
            self._history.append((float(t), 0.0, 0.0, yaw))
        self._last = (float(t), feet, yaw)
        while len(self._history) > 2 and self._history[1][0] <= t - self.average_s:
            self._history.popleft()

    def velocity(self) -> np.ndarray | None:
        """(vx, vy in the heading frame, wz) over the last ``average_s``; None until that much
        history has been seen since the last gap."""
        if len(self._history) < 2:
            return None
        t0, x0, y0, yaw0 = self._history[0]
        t1, x1, y1, yaw1 = self._history[-1]
        span = t1 - t0
        if span < 0.9 * self.average_s:
            return None
        mid = 0.5 * (yaw0 + yaw1)
        c, s = math.cos(mid), math.sin(mid)
        dx, dy = x1 - x0, y1 - y0
        return np.array([(c * dx + s * dy) / span, (-s * dx + c * dy) / span, (yaw1 - yaw0) / span])
