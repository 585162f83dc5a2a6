"""How well the robot followed a scripted velocity command, segment by segment.

Achieved velocity: the pelvis's displacement over ``AVERAGE_S`` (1 s, one gait cycle: two
steps) centred on a sample, expressed in the heading frame at the middle of that second, and
the heading change over the same second. A walking pelvis sways sideways by ±0.2 m/s within a
step, so the instantaneous velocity is not what a command asks for; its mean over a cycle is.

Settled: a segment's samples whose whole averaging second lies at least ``SETTLE_S`` (2 s)
after the segment's command began and before it ended. The planner ramps the command within its
acceleration limits (at most 0.5 s for the shipped script at the default limits) and the robot
needs a step or two to change gait; what is left is the steady state the command asks for.
The table also gives the error over the whole segment (every sample whose averaging second lies
inside the segment), so a slow start is not hidden.

Errors per segment: ``e_v`` the mean of |achieved - commanded| planar velocity (vector norm,
m/s), ``e_wz`` the mean |achieved - commanded| yaw rate (rad/s). The same can be computed for
the reference (the planner's output) to tell planning errors from tracking errors.
"""
from __future__ import annotations

import math

import numpy as np

from gmt_ros.core import rotations
from gmt_ros.core.velocity_script import VelocityScript

AVERAGE_S = 1.0
SETTLE_S = 2.0
LIMIT_V = 0.15  # m/s: issue 12's bound on the settled mean planar-velocity error
LIMIT_WZ = 0.2  # rad/s: ... and on the yaw-rate error


def averaged_velocity(times: np.ndarray, root_pos: np.ndarray, root_quat: np.ndarray,
                      average_s: float = AVERAGE_S) -> tuple[np.ndarray, np.ndarray]:
    """(centre times (M,), velocities (M, 3): vx, vy in the mid heading frame, wz) for every
    sample time whose averaging window lies inside the data."""
    times = np.asarray(times, dtype=np.float64)
    if times.ndim != 1 or times.shape[0] < 2 or np.any(np.diff(times) <= 0):
        raise ValueError("times must be increasing, at least two samples")
    half = 0.5 * average_s
    centres = times[(times - half >= times[0] - 1e-9) & (times + half <= times[-1] + 1e-9)]
    yaw = np.unwrap(rotations.to_rpy(np.asarray(root_quat, dtype=np.float64))[:, 2])
    lo, hi = centres - half, centres + half

    def at(values, t):
        return np.interp(t, times, values)

    dx = at(root_pos[:, 0], hi) - at(root_pos[:, 0], lo)
    dy = at(root_pos[:, 1], hi) - at(root_pos[:, 1], lo)
    y0, y1 = at(yaw, lo), at(yaw, hi)
    mid = 0.5 * (y0 + y1)
    c, s = np.cos(mid), np.sin(mid)
    v = np.stack([(c * dx + s * dy) / average_s, (-s * dx + c * dy) / average_s, (y1 - y0) / average_s], axis=-1)
    return centres, v


def segment_rows(script: VelocityScript, times: np.ndarray, root_pos: np.ndarray, root_quat: np.ndarray,
                 settle_s: float = SETTLE_S, average_s: float = AVERAGE_S) -> list[dict]:
    """One dict per script segment: command, settled mean achieved velocity, settled errors, the
    whole-segment errors, and how many averaging windows each is over. ``times`` are seconds on
    the script's clock (0 = the script's start)."""
    centres, v = averaged_velocity(times, root_pos, root_quat, average_s)
    half = 0.5 * average_s
    rows = []
    for i, seg in enumerate(script.segments):
        cmd = np.array(seg.command)
        whole = (centres - half >= seg.start_s - 1e-9) & (centres + half <= seg.end_s + 1e-9)
        settled = whole & (centres - half >= seg.start_s + settle_s - 1e-9)
        row = {"index": i, "segment": seg.name, "start_s": seg.start_s, "end_s": seg.end_s,
               "command": [float(x) for x in cmd], "settled_windows": int(settled.sum()),
               "whole_windows": int(whole.sum())}
        for label, sel in (("settled", settled), ("whole", whole)):
            if not np.any(sel):
                row[f"{label}_mean"] = None
                row[f"{label}_e_v"] = row[f"{label}_e_wz"] = None
                continue
            err = v[sel] - cmd
            row[f"{label}_mean"] = [round(float(x), 4) for x in v[sel].mean(axis=0)]
            row[f"{label}_e_v"] = round(float(np.linalg.norm(err[:, :2], axis=1).mean()), 4)
            row[f"{label}_e_wz"] = round(float(np.abs(err[:, 2]).mean()), 4)
        rows.append(row)
    return rows


def summary(rows: list[dict]) -> dict:
    """Worst settled errors over the segments and whether all are within issue 12's bounds."""
    e_v = [r["settled_e_v"] for r in rows if r["settled_e_v"] is not None]
    e_wz = [r["settled_e_wz"] for r in rows if r["settled_e_wz"] is not None]
    worst_v = max(e_v) if e_v else math.nan
    worst_wz = max(e_wz) if e_wz else math.nan
    return {"segments": len(rows), "scored": len(e_v), "worst_settled_e_v": worst_v, "worst_settled_e_wz": worst_wz,
            "within_bounds": bool(e_v) and worst_v <= LIMIT_V and worst_wz <= LIMIT_WZ,
            "bounds": {"e_v": LIMIT_V, "e_wz": LIMIT_WZ}, "settle_s": SETTLE_S, "average_s": AVERAGE_S}


def _fmt(values) -> str:
    return "—" if values is None else " / ".join(f"{x:+.2f}" for x in values)


def markdown(rows: list[dict], reference_rows: list[dict] | None = None) -> str:
    """The per-segment table (achieved, and the reference's own velocity when given)."""
    head = "| # | segment | s | command vx / vy / wz | achieved (settled) | e_v m/s | e_wz rad/s | whole-segment e_v / e_wz |"
    sep = "|---|---|---|---|---|---|---|---|"
    if reference_rows is not None:
        head += " reference (settled) | ref e_v / e_wz |"
        sep += "---|---|"
    lines = [head, sep]
    for i, r in enumerate(rows):
        def num(x):
            return "—" if x is None else f"{x:.3f}"
        line = (f"| {r['index'] + 1} | {r['segment']} | {r['start_s']:.0f}–{r['end_s']:.0f} | {_fmt(r['command'])} | "
                f"{_fmt(r['settled_mean'])} | {num(r['settled_e_v'])} | {num(r['settled_e_wz'])} | "
                f"{num(r['whole_e_v'])} / {num(r['whole_e_wz'])} |")
        if reference_rows is not None:
            ref = reference_rows[i]
            line += f" {_fmt(ref['settled_mean'])} | {num(ref['settled_e_v'])} / {num(ref['settled_e_wz'])} |"
        lines.append(line)
    return "\n".join(lines)


def resample(times: np.ndarray, dt: float = 0.02) -> np.ndarray:
    """Indices of samples at least ``dt`` apart (in time order; the first of a crowd is kept):
    reference samples recorded from overlapping windows, thinned to one per control step."""
    keep, last = [], -math.inf
    for i in np.argsort(times, kind="stable"):
        if times[i] >= last + dt - 1e-4:
            keep.append(i)
            last = times[i]
    return np.array(keep, dtype=np.int64)


def velocity_report(script: VelocityScript, robot: tuple, reference: tuple, dt: float = 0.02) -> dict:
    """The velocity part of a planner run's report.

    ``robot`` = (times, root_pos, root_quat) of the simulated robot, ``reference`` = (times,
    root_pos, root_quat, joint_pos) of the reference it was given, times on the script's clock.
    Returns the per-segment rows of both, the summary, and the reference's foot slip by segment
    name (``gmt_ros.core.leg_kinematics``: how much the planner's warp and blends make the
    reference's planted feet slide).
    """
    from gmt_ros.core.leg_kinematics import planted_foot_speeds, slip_summary

    rows = segment_rows(script, *robot)
    ref_t, ref_pos, ref_quat, ref_q = (np.asarray(a) for a in reference)
    ref_rows = segment_rows(script, ref_t, ref_pos, ref_quat)
    speeds, planted = planted_foot_speeds(ref_pos, ref_quat, ref_q, dt)
    regular = np.abs(np.diff(ref_t) - dt) < 0.25 * dt  # steps across a gap in the samples are not speeds
    planted = planted & regular[:, None]
    mid = 0.5 * (ref_t[1:] + ref_t[:-1])
    by_name: dict[str, np.ndarray] = {}
    for seg in script.segments:
        inside = (mid >= seg.start_s) & (mid < seg.end_s)
        by_name[seg.name] = by_name.get(seg.name, np.zeros_like(inside)) | inside
    return {
        "segments": rows,
        "reference_segments": ref_rows,
        "velocity_tracking": summary(rows),
        "reference_foot_slip": {"all": slip_summary(speeds, planted)}
        | {name: slip_summary(speeds[sel], planted[sel]) for name, sel in by_name.items()},
    }


def verdict_line(report: dict) -> str:
    """One line: upright or not, the worst settled errors against issue 12's bounds."""
    s = report["velocity_tracking"]
    upright = report.get("upright", report.get("fell") is False)
    slip = report["reference_foot_slip"]["all"]
    return (f"{'upright' if upright else 'NOT upright'}; worst settled e_v {s['worst_settled_e_v']:.3f} m/s "
            f"(bound {s['bounds']['e_v']}), e_wz {s['worst_settled_e_wz']:.3f} rad/s (bound {s['bounds']['e_wz']}): "
            f"{'within' if s['within_bounds'] else 'NOT within'} bounds; settled = from {s['settle_s']:g} s after each "
            f"command change, {s['average_s']:g} s averages; reference planted-foot slip median "
            f"{slip['median_mps']} m/s, p95 {slip['p95_mps']} m/s")
