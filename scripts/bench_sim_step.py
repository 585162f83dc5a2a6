#!/usr/bin/env python3
"""Physics steps per second of G1Sim.step (motor PD included) on this machine.

    .venv/bin/python scripts/bench_sim_step.py [--steps 4000] [--repeats 5]

The robot holds its default pose (feet in contact, as in a real run). For the PD's Python
overhead, G1Sim and bare mujoco.mj_step are also timed on the robot hanging in the air (the same
contact-free state for both; without the PD a standing robot would fall and change the work).
"""
from __future__ import annotations

import argparse
import time

import mujoco
import numpy as np

from gmt_ros.core import g1
from gmt_ros.core.command import JointCommand
from sim2sim.g1_model import build_g1_model
from sim2sim.simulator import G1Sim


def hold_command() -> JointCommand:
    n = g1.NUM_BODY_JOINTS
    kp = np.array([200.0] * 12 + [150.0] * 3 + [40.0] * 14)
    kd = np.array([5.0] * 12 + [4.0] * 3 + [5.0] * 14)
    return JointCommand(q=g1.DEFAULT_POSE.copy(), dq=np.zeros(n), kp=kp, kd=kd, tau=np.zeros(n),
                        enabled=np.ones(n, bool))


def best_rate(run, steps: int, repeats: int) -> float:
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        run(steps)
        best = max(best, steps / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    model = build_g1_model()
    sim = G1Sim(model)
    sim.set_command(hold_command())

    def run_standing(n: int) -> None:
        sim.reset()
        sim.set_command(hold_command())
        sim.step(n)

    air_height = 100.0  # 0.5 g t² stays far above the floor for any --steps used here

    def run_sim_air(n: int) -> None:
        sim.reset(root_pos=[0.0, 0.0, air_height])
        sim.set_command(hold_command())
        sim.step(n)

    data = mujoco.MjData(model)

    def run_bare_air(n: int) -> None:
        mujoco.mj_resetData(model, data)
        data.qpos[:] = sim.data.qpos
        data.qpos[2] = air_height
        data.qpos[7:] = g1.DEFAULT_POSE
        for _ in range(n):
            mujoco.mj_step(model, data)

    dt = model.opt.timestep
    standing = best_rate(run_standing, args.steps, args.repeats)
    sim_air = best_rate(run_sim_air, args.steps, args.repeats)
    bare_air = best_rate(run_bare_air, args.steps, args.repeats)
    print(f"best of {args.repeats} x {args.steps} steps, physics at {1 / dt:.0f} Hz")
    print(f"G1Sim.step with PD, standing: {standing:8.0f} steps/s ({standing * dt:.1f}x real time)")
    print(f"G1Sim.step with PD, in air:   {sim_air:8.0f} steps/s")
    print(f"bare mj_step, in air:         {bare_air:8.0f} steps/s "
          f"(PD + split step cost {1e6 / sim_air - 1e6 / bare_air:.1f} us/step)")


if __name__ == "__main__":
    main()
