"""Section "policy": ``TrackingPolicy.step`` of the shipped student in this process (no ROS), each
part timed inside the same step, on a synthetic walking reference and noisy standing states."""
from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from gmt_ros.core.contract import DEFAULT_POLICY
from gmt_ros.tools.bench.report import percentiles_ms

WARMUP_STEPS = 100


class _Timed:
    """Wraps a callable; ``last`` is the duration (s) of its latest call."""

    def __init__(self, fn):
        self._fn = fn
        self.last = math.nan

    def __call__(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return self._fn(*args, **kwargs)
        finally:
            self.last = time.perf_counter() - t0

    def __getattr__(self, name):  # the wrapped object's attributes (e.g. OnnxPolicy.session)
        return getattr(self._fn, name)


def walking_window(seconds: float = 4.0, dt: float = 0.02):
    """A synthetic forward walk (closed form): the reference the policy benchmark tracks."""
    from gmt_ros.core import g1
    from gmt_ros.core.frames import MotionFrames, MotionWindow

    n = int(round(seconds / dt))
    t = np.arange(n) * dt
    yaw = 0.2 * t
    quat = np.stack([np.cos(yaw / 2), 0 * t, 0 * t, np.sin(yaw / 2)], axis=1)
    q = np.tile(g1.DEFAULT_POSE, (n, 1))
    q[:, 0] += 0.35 * np.sin(2 * np.pi * t)
    q[:, 6] -= 0.35 * np.sin(2 * np.pi * t)
    frames = MotionFrames(
        root_pos=np.stack([0.5 * t, 0 * t, 0.78 + 0 * t], axis=1), root_quat=quat,
        root_lin_vel=np.stack([0.5 * np.cos(yaw), 0.5 * np.sin(yaw), 0 * t], axis=1),
        root_ang_vel=np.tile([0.0, 0.0, 0.2], (n, 1)), joint_pos=q, joint_vel=np.gradient(q, dt, axis=0),
    )
    return MotionWindow(start_time=0.0, dt=dt, frames=frames, joint_mask=np.ones(g1.NUM_BODY_JOINTS, bool))


def noisy_states(count: int = 64, seed: int = 0):
    """Standing states with joint noise and a tilted IMU, as a real robot reports them."""
    from gmt_ros.core import g1, rotations
    from gmt_ros.core.state import RobotState

    rng = np.random.default_rng(seed)
    return [RobotState(stamp=0.0, joint_pos=g1.DEFAULT_POSE + rng.normal(0, 0.05, g1.NUM_BODY_JOINTS),
                       joint_vel=rng.normal(0, 0.5, g1.NUM_BODY_JOINTS),
                       imu_quat=rotations.from_rpy(rng.normal(0, 0.05, 3)), imu_gyro=rng.normal(0, 0.1, 3))
            for _ in range(count)]


def measure_policy_step(steps: int, contract: str = DEFAULT_POLICY) -> dict:
    """``steps`` policy steps (after a warm-up); each step's total and its parts."""
    from gmt_ros.core.contract import load_contract
    from gmt_ros.core.observation import ObservationBuilder
    from gmt_ros.core.policy import TrackingPolicy

    policy = TrackingPolicy(contract)
    window = walking_window()
    states = noisy_states()
    build = policy.observations.build = _Timed(policy.observations.build)
    network = policy.network = _Timed(policy.network)
    command = policy.action_to_command = _Timed(policy.action_to_command)
    ticks = int(round(window.end_time / policy.contract.control_dt)) - 2
    rows = np.empty((steps, 4))
    for i in range(-WARMUP_STEPS, steps):
        state, now = states[i % len(states)], (i % ticks) * policy.contract.control_dt
        window = dataclasses.replace(window)  # a new window object every tick, as at 50 Hz windows
        t0 = time.perf_counter()
        policy.step(state, window, now)
        total = time.perf_counter() - t0
        if i >= 0:
            rows[i] = total, build.last, network.last, command.last
    out = {"step_ms": percentiles_ms(rows[:, 0]), "observation_ms": percentiles_ms(rows[:, 1]),
           "onnx_ms": percentiles_ms(rows[:, 2]), "command_ms": percentiles_ms(rows[:, 3]),
           "checks_ms": percentiles_ms(rows[:, 0] - rows[:, 1:].sum(axis=1))}

    gmt = ObservationBuilder(load_contract("gmt_student"))
    zeros = np.zeros(gmt.contract.action_dim)
    gmt_s = np.empty(steps)
    for i in range(-WARMUP_STEPS, steps):
        t0 = time.perf_counter()
        gmt.build(states[i % len(states)], window, (i % (ticks - 100)) * 0.02, zeros)
        gmt.commit()
        if i >= 0:
            gmt_s[i] = time.perf_counter() - t0
    out["gmt_observation_ms"] = percentiles_ms(gmt_s)
    return out
