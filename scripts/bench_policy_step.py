#!/usr/bin/env python3
"""Time one policy step (observation + ONNX + command) of the shipped TWIST2 student, and the GMT
observation builder alone (no GMT weights exist), on a synthetic walking reference.

    .venv/bin/python scripts/bench_policy_step.py [--steps 3000]

Prints p50 / p99 / max in milliseconds. The policy runs at 50 Hz, so a step has 20 ms.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from gmt_ros.core import g1
from gmt_ros.core.contract import load_contract
from gmt_ros.core.frames import MotionFrames, MotionWindow
from gmt_ros.core.observation import ObservationBuilder
from gmt_ros.core.policy import TrackingPolicy
from gmt_ros.core.state import RobotState


def walking_window(seconds: float = 4.0, dt: float = 0.02) -> MotionWindow:
    n = int(seconds / dt)
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
    return MotionWindow(start_time=0.0, dt=dt, frames=frames, joint_mask=np.ones(29, bool))


def state_at(rng: np.random.Generator) -> RobotState:
    return RobotState(stamp=0.0, joint_pos=g1.DEFAULT_POSE + rng.normal(0, 0.05, 29), joint_vel=rng.normal(0, 0.5, 29),
                      imu_quat=np.array([1.0, 0.0, 0.0, 0.0]), imu_gyro=rng.normal(0, 0.1, 3))


def report(label: str, samples_ns: list[int]) -> None:
    ms = np.array(samples_ns) / 1e6
    print(f"{label:<44} p50 {np.percentile(ms, 50):6.3f} ms   p99 {np.percentile(ms, 99):6.3f} ms   "
          f"max {ms.max():6.3f} ms   (n={ms.size})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    window = walking_window()
    states = [state_at(rng) for _ in range(64)]

    policy = TrackingPolicy("twist2_student")
    step_ns, obs_ns, onnx_ns = [], [], []
    for i in range(args.steps + 100):
        state, now = states[i % 64], (i % 150) * 0.02
        t0 = time.perf_counter_ns()
        policy.step(state, window, now)
        t1 = time.perf_counter_ns()
        obs = policy.observations.build(state, window, now, policy.last_action)
        t2 = time.perf_counter_ns()
        policy.network(obs)
        t3 = time.perf_counter_ns()
        if i >= 100:  # warm-up
            step_ns.append(t1 - t0)
            obs_ns.append(t2 - t1)
            onnx_ns.append(t3 - t2)
    report("twist2_student step (validate+obs+ONNX+cmd)", step_ns)
    report("twist2_student observation build", obs_ns)
    report("twist2_student ONNX run (1 thread, CPU)", onnx_ns)

    gmt = ObservationBuilder(load_contract("gmt_student"))
    gmt_ns = []
    for i in range(args.steps + 100):
        t0 = time.perf_counter_ns()
        gmt.build(states[i % 64], window, (i % 150) * 0.02, np.zeros(23))
        gmt.commit()
        if i >= 100:
            gmt_ns.append(time.perf_counter_ns() - t0)
    report("gmt_student observation build (2154)", gmt_ns)


if __name__ == "__main__":
    main()
