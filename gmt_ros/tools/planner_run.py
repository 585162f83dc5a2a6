"""`gmt-ros sim2sim --source planner --script SCRIPT`: the velocity planner driven through the node
graph by a scripted /cmd_vel sequence (``gmt_ros.core.velocity_script``), and its report.

The runner (``sim2sim_run.Sim2SimSession``) brings the graph up with ``gmt_planner`` in the
player's place; once the robot stands under the policy, ``drive_script`` publishes the script's
current command as geometry_msgs/Twist on /cmd_vel at the script's rate on the wall clock (the
planner's command timeout is shorter than a gap in it would be). ``velocity_section`` measures,
per segment of the script, the robot's root velocity and yaw rate (from the simulator's trace: the
true state) and the reference's (from the recorded /gmt/motion_target windows) against the command
(``sim2sim.velocity_tracking``), and ``print_velocity_table`` prints the table and the verdict.
"""
from __future__ import annotations

import time

import numpy as np

from gmt_ros.tools import UsageError


def check_planner_options(opt):
    """("planner", the script's duration, contract, []) for ``check_options``; UsageError naming
    what is wrong."""
    from gmt_ros.core.contract import load_contract
    from gmt_ros.core.velocity_script import load_script

    if opt.script is None:
        raise UsageError("--source planner needs a /cmd_vel --script (e.g. config/cmd_vel_script.yaml)")
    if opt.motion is not None:
        raise UsageError("--source planner drives the robot with its --script; --motion is for the other sources")
    try:
        contract = load_contract(opt.policy)
        script = load_script(opt.script)
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    return "planner", script.duration_s, contract, []


def load_session_script(opt):
    """The script a session drives, cut to ``--seconds`` when given."""
    from gmt_ros.core.velocity_script import load_script

    script = load_script(opt.script)
    return script.truncated(opt.seconds) if opt.seconds is not None else script


def drive_script(session) -> None:
    """Publish the script's command on /cmd_vel at its rate, on the wall clock, from now; stop at a
    supervisor fault (noted, like a clip that ends early)."""
    obs, script = session.observer, session.script
    session.scored_s = script.duration_s
    obs.wait_for_cmd_vel_subscriber()
    cpu_start = (time.monotonic(), session.graph.cpu_seconds())
    period = 1.0 / script.rate_hz
    start = time.time()
    session.play_start, session.play_end = start, start + script.duration_s
    k = 0
    while True:
        t = time.time() - start
        if t >= script.duration_s:
            break
        obs.publish_velocity(script.command_at(t))
        session._check_nodes()
        if session.stopped_by_fault("the script"):
            return
        k += 1
        time.sleep(max(0.0, start + k * period - time.time()))
    obs.publish_velocity(np.zeros(3))
    session._note_cpu(cpu_start)


def velocity_section(session, trace, windows) -> dict:
    """The planner's per-segment velocity table, from the sim's trace (the robot) and the recorded
    windows (the reference), on the script's clock."""
    from sim2sim.velocity_tracking import resample, velocity_report

    statuses = session.observer_snapshot["planner"]
    out = {"script": session.script.source, "planner": statuses[-1][1] if statuses else None}
    t0, t1 = session.play_start, session.play_end
    if t0 is None or t1 is None:
        return out
    rows = (trace.unix_time >= t0) & (trace.unix_time <= t1)
    ref_t = np.array([w[0] for w in windows])
    inside = np.flatnonzero((ref_t >= t0) & (ref_t <= t1))
    idx = inside[resample(ref_t[inside])]
    if rows.sum() < 2 or idx.size < 2:
        return out
    robot = (trace.unix_time[rows] - t0, trace.root_pos[rows], trace.root_quat[rows])
    reference = (ref_t[idx] - t0, np.array([windows[i][1] for i in idx]), np.array([windows[i][2] for i in idx]),
                 np.array([windows[i][5] for i in idx]))
    return out | velocity_report(session.script, robot, reference)


def print_velocity_table(report: dict) -> str | None:
    """Print the per-segment table and the verdict line of a planner run; the table (markdown),
    or None when the report has none (the run ended before the script)."""
    from sim2sim import velocity_tracking

    if "segments" not in report:
        return None
    table = velocity_tracking.markdown(report["segments"], report["reference_segments"])
    print(table)
    print(velocity_tracking.verdict_line(report), flush=True)
    return table
