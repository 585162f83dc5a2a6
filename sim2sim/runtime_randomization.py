"""Where a domain-randomisation draw acts while the simulation runs (``sim2sim.randomization``):
the command and state links as delay lines in whole physics steps, and the sensor errors of what
the robot reports. Used by ``sim2sim.simulator.G1Sim``; the DDS sim node can reuse them."""
from __future__ import annotations

import dataclasses
from collections import deque
from typing import Any

import numpy as np

from gmt_ros.core import g1, rotations
from gmt_ros.core.state import RobotState
from sim2sim.randomization import DrawnParameters

_N = g1.NUM_BODY_JOINTS


def seconds_to_steps(seconds: float, dt: float) -> int:
    """A delay in whole steps of ``dt`` (nearest)."""
    return int(round(seconds / dt))


class DelayLine:
    """A one-way link in whole ticks: an item sent at tick t arrives at t + delay + U{0..jitter}, is
    lost with probability ``drop_prob``, and never overtakes an earlier one (arrival times are
    kept non-decreasing, as on one DDS reader)."""

    def __init__(self, delay_steps: int, jitter_steps: int = 0, drop_prob: float = 0.0,
                 rng: np.random.Generator | None = None):
        if delay_steps < 0 or jitter_steps < 0:
            raise ValueError(f"delay and jitter must be >= 0 steps, got {delay_steps}, {jitter_steps}")
        if not 0.0 <= drop_prob < 1.0:
            raise ValueError(f"drop_prob must be in [0, 1), got {drop_prob}")
        if (jitter_steps or drop_prob) and rng is None:
            raise ValueError("a DelayLine with jitter or drops needs a random generator")
        self.delay_steps, self.jitter_steps, self.drop_prob = int(delay_steps), int(jitter_steps), float(drop_prob)
        self._rng = rng
        self._queue: deque[tuple[int, Any]] = deque()
        self._last_arrival = -1
        self.sent = 0
        self.dropped = 0

    def send(self, item: Any, now: int) -> int | None:
        """Queue ``item``; returns its arrival tick, or None when the link lost it."""
        self.sent += 1
        if self.drop_prob and self._rng.random() < self.drop_prob:
            self.dropped += 1
            return None
        arrival = now + self.delay_steps
        if self.jitter_steps:
            arrival += int(self._rng.integers(0, self.jitter_steps + 1))
        arrival = max(arrival, self._last_arrival)
        self._last_arrival = arrival
        self._queue.append((arrival, item))
        return arrival

    def receive(self, now: int) -> Any | None:
        """The newest item arrived by tick ``now`` that was not received before, else None."""
        newest = None
        while self._queue and self._queue[0][0] <= now:
            newest = self._queue.popleft()[1]
        return newest

    @property
    def pending(self) -> int:
        return len(self._queue)

    def clear(self) -> None:
        self._queue.clear()
        self._last_arrival = -1


def apply_sensor_errors(state: RobotState, drawn: DrawnParameters, rng: np.random.Generator) -> RobotState:
    """What the robot would report given the true ``state``: IMU bias and noise, encoder noise, and
    the joint calibration offset. Noise is drawn from ``rng`` only for terms that have some."""
    joint_pos = np.asarray(state.joint_pos, dtype=np.float64) + np.asarray(drawn.joint_pos_offset_rad)
    joint_vel = np.array(state.joint_vel, dtype=np.float64)
    gyro = np.asarray(state.imu_gyro, dtype=np.float64) + np.asarray(drawn.gyro_bias_radps)
    acc = np.array(state.imu_acc, dtype=np.float64)
    quat = np.asarray(state.imu_quat, dtype=np.float64)
    if drawn.joint_pos_noise_rad:
        joint_pos += rng.normal(0.0, drawn.joint_pos_noise_rad, _N)
    if drawn.joint_vel_noise_radps:
        joint_vel += rng.normal(0.0, drawn.joint_vel_noise_radps, _N)
    if drawn.gyro_noise_radps:
        gyro += rng.normal(0.0, drawn.gyro_noise_radps, 3)
    if any(drawn.attitude_bias_rad):
        quat = rotations.multiply(quat, rotations.from_rpy(np.asarray(drawn.attitude_bias_rad)))
    if drawn.attitude_noise_rad:
        quat = rotations.multiply(quat, rotations.from_rpy(rng.normal(0.0, drawn.attitude_noise_rad, 3)))
    if drawn.accel_noise_mps2:
        acc += rng.normal(0.0, drawn.accel_noise_mps2, 3)
    return dataclasses.replace(state, joint_pos=joint_pos, joint_vel=joint_vel, imu_quat=quat / np.linalg.norm(quat),
                               imu_gyro=gyro, imu_acc=acc)
