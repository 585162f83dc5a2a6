"""What the fault suite's parts share: the settings the graph runs with, what one injection
recorded (``Injection``), the suite's test inputs (standing and malformed motion windows, corrupted
PD targets) and the readers its verdicts use (node logs, the sim's report and trace)."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gmt_ros import graph
from gmt_ros.core import g1

if TYPE_CHECKING:
    from gmt_ros.tools.faults.fault import Fault

DETECTION_S = 0.040  # the bound: damping within 40 ms of detection being possible
HUGE_ACTION = 1000.0  # a "huge" target: the policy's default pose + action_scale x this (it clips to ±action_clip)


class FaultRunError(RuntimeError):
    """A run that could not be carried out as planned (a node died, the robot faulted before the
    injection, ...): not a verdict on the fault."""


@dataclass
class Injection:
    """What the suite did and saw for one fault, before the sim's report is read."""

    fault: Fault
    start_unix: float | None = None     # when the suite injected / the fault was due
    sim_time_s: float | None = None     # sim-side faults: the sim time it fires at
    reaction: dict | None = None        # the supervisor state carrying the fault
    notes: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)


@dataclass
class Verdict:
    """What ``evaluate`` hands a fault's ``verdict``: the run's records, the common figures so far
    (``out``), the checks, notes, and the reference (when detection became possible)."""

    inj: Injection
    raw: dict
    settings: dict
    sim: dict
    trace: object | None
    out: dict
    checks: dict
    notes: list
    reference: float | None
    limit: float | None

    @property
    def reaction(self) -> dict:
        return self.inj.reaction or {}

    def log(self, key: str):
        return self.raw["logs"].get(key)


def node_settings() -> dict:
    """The bridge's and policy's timeouts as config/*.yaml sets them (what the graph runs with)."""
    bridge, policy, player = (graph.node_parameters(s) for s in (graph.BRIDGE, graph.POLICY, graph.PLAYER))
    return {"state_timeout_s": float(bridge["state_timeout_s"]), "target_timeout_s": float(bridge["target_timeout_s"]),
            "window_max_age_s": float(policy["window_max_age_s"]), "window_timeout_s": float(policy["window_timeout_s"]),
            "stale_blend_s": float(policy["stale_blend_s"]), "fall_tilt_rad": float(bridge["fall_tilt_rad"]),
            "fall_height_m": float(bridge["fall_height_m"]), "gross_margin_rad": float(bridge["gross_margin_rad"]),
            "player_blend_in_s": float(player["blend_in_s"])}


# ------------------------------------------------------------------------------------------------
# Test inputs


def standing_window(now: float, n_frames: int = 121, dt: float = 0.02, pose: np.ndarray | None = None):
    """A valid motion window: ``pose`` (default: g1.DEFAULT_POSE) standing still from ``now``."""
    from gmt_ros.core.frames import MotionFrames, MotionWindow

    n = g1.NUM_BODY_JOINTS
    pose = g1.DEFAULT_POSE if pose is None else pose
    frames = MotionFrames(root_pos=np.tile([0.0, 0.0, 0.78], (n_frames, 1)),
                          root_quat=np.tile([1.0, 0.0, 0.0, 0.0], (n_frames, 1)),
                          root_lin_vel=np.zeros((n_frames, 3)), root_ang_vel=np.zeros((n_frames, 3)),
                          joint_pos=np.tile(pose, (n_frames, 1)), joint_vel=np.zeros((n_frames, n)))
    return MotionWindow(start_time=now, dt=dt, frames=frames, joint_mask=np.ones(n, dtype=bool))


MALFORMED_KINDS = ("unknown_joint", "length_mismatch", "not_finite")


def malformed_window(kind: str, now: float):
    """A JointTrajectory that is valid except for one defect (``kind`` is the decoder's reason code)."""
    from gmt_ros.nodes.window_codec import encode_window

    msg = encode_window(standing_window(now))
    if kind == "unknown_joint":
        i = msg.joint_names.index("waist_roll_joint")
        msg.joint_names[i] = "waist_rol_joint"
    elif kind == "length_mismatch":
        msg.points[3].positions = list(msg.points[3].positions)[:-1]
    elif kind == "not_finite":
        positions = list(msg.points[5].positions)
        positions[-4] = float("nan")
        msg.points[5].positions = positions
    else:
        raise ValueError(f"unknown malformed window kind {kind!r}; known: {', '.join(MALFORMED_KINDS)}")
    return msg


def corrupted_positions(kind: str, positions, action_scale) -> list[float]:
    """A policy gone wrong: NaN everywhere ("nan"), or the targets of a raw action of HUGE_ACTION
    on every joint, past the policy's own clip ("huge")."""
    q = np.asarray(positions, dtype=np.float64)
    if kind == "nan":
        return np.full_like(q, np.nan).tolist()
    if kind == "huge":
        return (q + np.asarray(action_scale) * HUGE_ACTION).tolist()
    raise ValueError(f"unknown corrupted target kind {kind!r}; known: nan, huge")


# ------------------------------------------------------------------------------------------------
# Readers for the verdicts


def largest_gap(times) -> float:
    """The largest interval between consecutive sorted times (0 for fewer than two)."""
    return float(np.max(np.diff(times))) if len(times) > 1 else 0.0


def ms(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(1e3 * x, 1)


ROS_LOG_TIME = re.compile(r"^\[\w+\] \[(\d+\.\d+)\]")  # "[ERROR] [1795317018.935876600] [node]: ..."


def log_lines(path, pattern: str, limit: int = 5, before: float | None = None) -> list[str]:
    """Lines of a node's log matching ``pattern``; with ``before``, only ROS log lines stamped
    before that wall time."""
    try:
        text = Path(path).read_text(errors="replace")
    except (OSError, TypeError):
        return []
    rx = re.compile(pattern)
    out = []
    for line in text.splitlines():
        if not rx.search(line):
            continue
        stamp = ROS_LOG_TIME.match(line)
        if before is not None and (stamp is None or float(stamp.group(1)) > before):
            continue
        out.append(line.strip())
    return out[:limit]


def sim_fault(sim: dict | None, kind: str) -> dict | None:
    rows = ((sim or {}).get("fault_injection") or {}).get("faults") or []
    return next((r for r in rows if r["kind"] == kind), None)


def fall_crossing(trace, t0: float, settings: dict) -> tuple[float | None, str]:
    """Wall time at which the robot first met the supervisor's fall criteria after ``t0`` (tilt
    from the true pelvis orientation, which is what the sim's IMU reports; pelvis height estimated
    from the IMU and joints as the bridge does), interpolated between the 50 Hz trace rows."""
    from gmt_ros.core.height_estimate import PelvisHeightEstimator
    from gmt_ros.core.state import RobotState

    rows = np.flatnonzero(trace.unix_time >= t0 - 0.05)
    if rows.size < 2:
        return None, "no trace rows after the push"
    q = trace.root_quat[rows]
    tilt = np.arccos(np.clip(1.0 - 2.0 * (q[:, 1] ** 2 + q[:, 2] ** 2) / np.sum(q * q, axis=1), -1.0, 1.0))
    estimate = PelvisHeightEstimator()
    zeros = np.zeros(g1.NUM_BODY_JOINTS)
    height = np.array([estimate(RobotState(stamp=0.0, joint_pos=trace.joint_pos[r], joint_vel=zeros,
                                           imu_quat=trace.root_quat[r], imu_gyro=np.zeros(3))) for r in rows])
    times = trace.unix_time[rows]

    def crossing(values, limit, above):
        over = values > limit if above else values < limit
        hit = np.flatnonzero(over)
        if hit.size == 0:
            return None
        i = int(hit[0])
        if i == 0:
            return float(times[0])
        a, b = values[i - 1], values[i]
        u = (limit - a) / (b - a) if b != a else 1.0
        return float(times[i - 1] + u * (times[i] - times[i - 1]))

    found = [(t, what) for t, what in ((crossing(tilt, settings["fall_tilt_rad"], True), "tilt"),
                                       (crossing(height, settings["fall_height_m"], False), "pelvis height estimate"))
             if t is not None]
    return min(found) if found else (None, "the robot never met a fall criterion")


def mode_changes(supervisor, t0: float) -> list:
    return [{"t": round(t - t0, 3), "mode": s.get("mode"), "fault": s.get("fault")} for t, s in supervisor]


def policy_until(supervisor, t: float) -> bool | None:
    """Whether the supervisor was in policy mode, without a fault, right before wall time ``t``
    (by its own event times); None when the history does not say."""
    last = None
    for _receipt, s in supervisor:
        event_time = (s.get("last_event") or {}).get("time") or _receipt
        if event_time <= t:
            last = s
    if last is None:
        return None
    return last.get("mode") == "policy" and not last.get("fault")
