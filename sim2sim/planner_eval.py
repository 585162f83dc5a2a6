"""The velocity planner in the offline loop: scripted command -> planner -> policy -> MuJoCo G1.

    python -m sim2sim.planner_eval [--script config/cmd_vel_script.yaml] [--config config/planner.yaml]
                                   [--policy twist2_student] [--seconds S] [--dr PRESET --seed N]
                                   [--json OUT] [--markdown OUT] [--trace OUT.npz]

No ROS, no DDS: ``sim2sim.evaluate.run_episode`` (the loop of ``gmt-ros eval``: 1 kHz physics,
the bridge's limits and fall check) tracks the planner's windows as it would a clip's, the
planner being asked for its window at every policy tick with the script's command at that time.
Several times faster than real time, so it is where the planner is tuned; the node graph
(``gmt-ros sim2sim --source planner``) is then measured the same way (``sim2sim.velocity_tracking``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from gmt_ros.core import g1
from gmt_ros.core.frames import MotionFrames
from gmt_ros.core.leg_odometry import LegOdometry
from gmt_ros.core.locomotion_planner import LocomotionPlanner
from gmt_ros.core.paths import config_dir
from gmt_ros.core.planner_config import feedback_from, planner_from_yaml
from gmt_ros.core.velocity_command import VelocityFeedback, check
from gmt_ros.core.velocity_script import VelocityScript, load_script
from sim2sim import velocity_tracking

DEFAULT_SCRIPT = "cmd_vel_script.yaml"


class PlannedReference:
    """The planner seen as a clip by ``run_episode``: ``sample(times)`` answers with the planner's
    window at ``times[0]`` (the loop asks at each policy tick, first for the tick's frame, then
    for the policy's window from the same time), asking the planner for a new window when the
    time moves on. Times must not go backwards. Records the reference's frame 0 of every tick."""

    def __init__(self, planner: LocomotionPlanner, script: VelocityScript, seconds: float,
                 feedback: VelocityFeedback | None = None):
        self.planner = planner
        self.script = script
        self.feedback = feedback
        self.odometry = LegOdometry()
        self.measured: list[tuple[float, np.ndarray | None]] = []
        self.name = "planner"
        self.duration = float(seconds)
        self.joint_mask = np.ones(g1.NUM_BODY_JOINTS, dtype=bool)
        self._window = None
        self.rows: list[tuple[float, np.ndarray, np.ndarray, np.ndarray]] = []  # t, root pos, quat, joints

    def sample(self, times, conventions=None) -> MotionFrames:
        """``conventions`` (the contract's reference conventions, which a clip's velocities follow)
        is not used: the planner's windows carry their own velocities, as on /gmt/motion_target."""
        times = np.atleast_1d(np.asarray(times, dtype=np.float64))
        t0 = float(times[0])
        if self._window is None or t0 > self._window.start_time + 1e-9:
            target = check(*self.script.command_at(t0), self.planner.limits).velocity
            correction = None if self.feedback is None else self.feedback.update(t0, target, self.odometry.velocity())
            self._window = self.planner.window(t0, target, correction)
            f = self._window.frames
            self.rows.append((t0, f.root_pos[0].copy(), f.root_quat[0].copy(), f.joint_pos[0].copy()))
        return self._window.sample(times)

    def observe(self, t: float, state) -> None:
        """The robot's sensors at t (what the planner node reads from /joint_states and /imu)."""
        self.odometry.update(t, state.joint_pos, state.imu_quat)
        self.measured.append((t, self.odometry.velocity()))


def run(script: VelocityScript, config: str | Path | None = None, policy: str = "twist2_student",
        seconds: float | None = None, seed: int = 0, dr=None, trace: bool = False, overrides: dict | None = None) -> dict:
    """Run the script through the planner and the policy on the simulated G1; the report dict."""
    from gmt_ros.core.contract import load_contract
    from sim2sim.evaluate import run_episode

    if seconds is not None:
        script = script.truncated(seconds)
    seconds = script.duration_s
    planner, rest = planner_from_yaml(config, **(overrides or {}))
    planner.reset(0.0)
    feedback = feedback_from(rest)
    if feedback is not None and dr is not None:
        raise ValueError("the offline loop reads the sensors for the velocity feedback without randomisation only; "
                         "turn velocity_feedback off to run with --dr")
    reference = PlannedReference(planner, script, seconds, feedback)
    robot: list[tuple[float, np.ndarray, np.ndarray]] = []

    def record(t, sim):
        pos, quat = sim.root_pose()
        robot.append((t, np.array(pos), np.array(quat)))
        if feedback is not None:
            reference.observe(t, sim.state())

    result = run_episode(load_contract(policy), reference, seconds=seconds, seed=seed, dr=dr, start="clip",
                         trace=trace, frame_hook=record, frame_rate_hz=50.0)
    robot_arrays = (np.array([r[0] for r in robot]), np.array([r[1] for r in robot]), np.array([r[2] for r in robot]))
    ref_arrays = tuple(np.array([r[i] for r in reference.rows]) for i in range(4))
    report = {
        "source": "planner",
        "mode": "offline loop (sim2sim.planner_eval)",
        "script": script.source,
        "policy": policy,
        "seconds": seconds,
        "seed": seed,
        "episode": result.as_dict(),
        "upright": not result.fell,
        "summary": result.summary_line(),
        **velocity_tracking.velocity_report(script, robot_arrays, ref_arrays, planner.settings.dt),
        "planner": {"searches": planner.searches, "switches": planner.switches,
                    "velocity_feedback": feedback is not None},
        "odometry_error": odometry_error(reference.measured, robot_arrays),
    }
    if trace:
        report["_trace"] = result.trace
    return report


def odometry_error(measured, robot) -> dict | None:
    """Mean absolute error of the leg odometry (vx, vy, wz over the last second) against the
    simulator's true pelvis motion over the same second."""
    rows = [(t, v) for t, v in measured if v is not None]
    if not rows:
        return None
    centres, truth = velocity_tracking.averaged_velocity(*robot)
    t = np.array([r[0] for r in rows]) - 0.5
    est = np.array([r[1] for r in rows])
    inside = (t >= centres[0]) & (t <= centres[-1])
    if not np.any(inside):
        return None
    true_v = np.stack([np.interp(t[inside], centres, truth[:, i]) for i in range(3)], axis=-1)
    err = np.abs(est[inside] - true_v).mean(axis=0)
    return {"vx_mps": round(float(err[0]), 4), "vy_mps": round(float(err[1]), 4), "wz_radps": round(float(err[2]), 4),
            "samples": int(inside.sum())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim2sim.planner_eval", description=__doc__.split("\n")[0])
    parser.add_argument("--script", default=str(config_dir() / DEFAULT_SCRIPT))
    parser.add_argument("--config", default=None, help="planner parameter file (default config/planner.yaml)")
    parser.add_argument("--policy", default="twist2_student")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dr", default=None, help="domain randomisation preset (config/randomization.yaml)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--markdown", default=None)
    args = parser.parse_args(argv)
    script = load_script(args.script)
    report = run(script, args.config, args.policy, args.seconds, args.seed, args.dr)
    table = velocity_tracking.markdown(report["segments"], report["reference_segments"])
    print(report["summary"])
    print(table)
    print(velocity_tracking.verdict_line(report))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1))
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
