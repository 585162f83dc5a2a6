"""`gmt-ros record` (topics to an MCAP file) and `gmt-ros replay` (a recording's inputs through
the policy again, compared with the joint targets it recorded).

    gmt-ros record --out run.mcap [--topics T ...] [--regex R] [--exclude R] [--seconds S]
    gmt-ros replay run.mcap [--policy NAME] [--json OUT] [--trace OUT.csv]

Replay rebuilds, at every recorded policy tick (the ``header.stamp`` of each /gmt/joint_targets
message), what the policy node had then: the newest /joint_states and /imu sent before the tick,
and the newest /gmt/motion_target window it had accepted (decoded and checked on arrival as the
node does). It steps a fresh TrackingPolicy with them and compares its joint targets with the
recorded ones. Tracking runs are rebuilt as the node runs them: the policy is reset at the first
tick after a tick that published nothing (``/gmt/policy/timing``; without that topic, after a gap
of more than 1.5 control steps). Messages are placed in time by their DDS source timestamp (when
their publisher sent them). See docs/RECORDING.md.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gmt_ros.core.contract import DEFAULT_POLICY
from gmt_ros.tools import UsageError

JOINT_STATES_TOPIC = "/joint_states"
IMU_TOPIC = "/imu"
MOTION_TARGET_TOPIC = "/gmt/motion_target"
JOINT_TARGETS_TOPIC = "/gmt/joint_targets"
TIMING_TOPIC = "/gmt/policy/timing"
TRACE_COLUMNS = ("t_s", "run", "tick_in_run", "max_abs_rad", "joint", "state_age_ms", "window_age_ms")
RESET_GAP_STEPS = 1.5  # without the timing topic: a longer gap between targets means the node reset


def _seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


# ----------------------------------------------------------------------------- inputs as the node sees them

def joint_state_arrays(msg) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """29-slot (position, velocity, effort) of a sensor_msgs/JointState, by joint name, as the
    policy node reads it (effort zero unless given for every joint)."""
    from gmt_ros.core import g1

    names = list(msg.name)
    index = {n: i for i, n in enumerate(names)}
    missing = [n for n in g1.JOINT_NAMES if n not in index]
    if missing:
        raise ValueError(f"joint state lacks joints {', '.join(missing)}")
    n = len(names)
    if len(msg.position) != n or len(msg.velocity) != n:
        raise ValueError(f"joint state has {len(msg.position)} positions and {len(msg.velocity)} velocities for {n} names")
    cols = np.array([index[name] for name in g1.JOINT_NAMES], dtype=np.int64)
    pos = np.asarray(msg.position, dtype=np.float64)[cols]
    vel = np.asarray(msg.velocity, dtype=np.float64)[cols]
    tau = np.asarray(msg.effort, dtype=np.float64)[cols] if len(msg.effort) == n else np.zeros(g1.NUM_BODY_JOINTS)
    return pos, vel, tau


def imu_arrays(msg) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(quaternion w, x, y, z; gyro; accelerometer) of a sensor_msgs/Imu (ROS stores x, y, z, w)."""
    o, w, a = msg.orientation, msg.angular_velocity, msg.linear_acceleration
    return np.array([o.w, o.x, o.y, o.z]), np.array([w.x, w.y, w.z]), np.array([a.x, a.y, a.z])


# ----------------------------------------------------------------------------- replay

@dataclass
class ReplayReport:
    recording: str
    policy: str
    joint_names: list[str]
    recording_complete: bool = True  # False: the recorder was killed; read up to its last flush
    ticks_recorded: int = 0
    ticks_compared: int = 0
    ticks_not_replayable: dict[str, int] = field(default_factory=dict)  # reason -> ticks
    runs: list[dict] = field(default_factory=list)       # one per tracking run (reset to reset)
    windows_accepted: int = 0
    windows_refused: dict[str, int] = field(default_factory=dict)      # reason -> windows
    max_abs_diff: np.ndarray | None = None                # per policy joint, rad
    sum_abs_diff: np.ndarray | None = None
    worst: dict = field(default_factory=dict)
    state_age_ms: list[float] = field(default_factory=list)  # tick time - joint state sent, per tick
    tick_max_diff: list[float] = field(default_factory=list)  # largest joint difference, per tick
    trace: list[tuple] = field(default_factory=list)  # per compared tick: TRACE_COLUMNS
    tick_period_ms: float = float("nan")

    def as_dict(self) -> dict:
        n = max(self.ticks_compared, 1)
        per_joint = {}
        if self.max_abs_diff is not None:
            per_joint = {name: {"max_abs_rad": float(self.max_abs_diff[i]), "mean_abs_rad": float(self.sum_abs_diff[i] / n)}
                         for i, name in enumerate(self.joint_names)}
        ages, tick_diff = np.array(self.state_age_ms), np.array(self.tick_max_diff)
        return {
            "recording": self.recording, "policy": self.policy, "recording_complete": self.recording_complete,
            "ticks_recorded": self.ticks_recorded, "ticks_compared": self.ticks_compared,
            "ticks_not_replayable": dict(self.ticks_not_replayable),
            "tick_period_ms": self.tick_period_ms,
            "runs": self.runs,
            "windows": {"accepted": self.windows_accepted, "refused": dict(self.windows_refused)},
            "max_abs_diff_rad": float(self.max_abs_diff.max()) if self.max_abs_diff is not None else None,
            "mean_abs_diff_rad": (float(self.sum_abs_diff.sum() / (n * len(self.joint_names)))
                                  if self.sum_abs_diff is not None else None),
            "tick_max_abs_diff_rad": ({"p50": float(np.median(tick_diff)), "p99": float(np.percentile(tick_diff, 99))}
                                      if tick_diff.size else None),
            "worst": self.worst,
            "state_age_ms": ({"p50": float(np.median(ages)), "max": float(ages.max())} if ages.size else None),
            "per_joint": per_joint,
        }

    def summary_line(self) -> str:
        d = self.as_dict()
        if not self.ticks_compared:
            return f"{self.recording}: no tick could be replayed ({self.ticks_recorded} recorded)"
        w, t = self.worst, d["tick_max_abs_diff_rad"]
        return (f"{self.recording}: {self.ticks_compared}/{self.ticks_recorded} ticks replayed with {self.policy} in "
                f"{len(self.runs)} run(s); joint target difference max {d['max_abs_diff_rad']:.3g} rad "
                f"({w['joint']} at +{w['t_s']:.3f} s), mean {d['mean_abs_diff_rad']:.3g} rad; per tick p50 "
                f"{t['p50']:.3g}, p99 {t['p99']:.3g} rad" + ("" if self.recording_complete else " (file not closed cleanly)"))


def _rclpy_decoder():
    """CDR -> the ROS message objects the policy node itself receives (rclpy's C deserializer)."""
    from rclpy.serialization import deserialize_message

    from gmt_ros.nodes.recorder_node import message_class

    classes: dict[str, type] = {}

    def decode(type_name: str, data: bytes):
        if type_name not in classes:
            classes[type_name] = message_class(type_name)
        return deserialize_message(data, classes[type_name])

    return decode


def _events(path: Path):
    """Messages of the replay topics as (time ns, order, kind, message), in time order; inputs
    before a tick at the same nanosecond. Inputs count from when their publisher sent them (the
    DDS source timestamp): on a loaded machine the recorder's own reception time is further from
    the policy node's (measured: a worse match)."""
    from gmt_ros.adapters import mcap_io

    order = {JOINT_STATES_TOPIC: 0, IMU_TOPIC: 0, MOTION_TARGET_TOPIC: 0, TIMING_TOPIC: 0, JOINT_TARGETS_TOPIC: 1}
    events, counts = [], dict.fromkeys(order, 0)
    for rec in mcap_io.read_messages(path, topics=list(order), decode=_rclpy_decoder()):
        counts[rec.topic] += 1
        if rec.topic == JOINT_TARGETS_TOPIC:
            stamp = rec.message.header.stamp
            t_ns = stamp.sec * 1_000_000_000 + stamp.nanosec  # the node's tick time
        else:
            t_ns = rec.sent_ns
        events.append((t_ns, order[rec.topic], rec.topic, rec.message))
    events.sort(key=lambda e: (e[0], e[1]))
    return events, counts


def replay(path: str | Path, policy: str = DEFAULT_POLICY, window_max_age_s: float | None = None) -> ReplayReport:
    """Replay a recording through ``policy`` (see the module docstring). Raises ValueError (e.g.
    RecordingError) for a recording that lacks what replay needs or does not fit the policy."""
    from gmt_ros.adapters import mcap_io
    from gmt_ros.adapters.mcap_io import RecordingError
    from gmt_ros.core.contract import load_contract
    from gmt_ros.core.policy import TrackingPolicy
    from gmt_ros.core.state import RobotState
    from gmt_ros.core.window_check import MotionTargetError, check_window_timing
    from gmt_ros.nodes.policy_node import PARAMETERS as POLICY_NODE_PARAMETERS
    from gmt_ros.nodes.window_codec import decode_window

    path = Path(path)
    if not path.is_file():  # before the policy loads: both are checked before the long read
        raise RecordingError(f"recording {path} not found")
    contract = load_contract(policy)
    tracker = TrackingPolicy(contract)
    dt = contract.control_dt
    horizon_s = max(contract.future_offsets, default=0) * dt
    max_age = window_max_age_s if window_max_age_s is not None else POLICY_NODE_PARAMETERS["window_max_age_s"][0]
    events, counts = _events(path)
    for topic in (JOINT_TARGETS_TOPIC, JOINT_STATES_TOPIC, IMU_TOPIC, MOTION_TARGET_TOPIC):
        if not counts[topic]:
            raise RecordingError(f"{path} has no {topic} messages; replay needs {JOINT_TARGETS_TOPIC}, "
                                 f"{JOINT_STATES_TOPIC}, {IMU_TOPIC} and {MOTION_TARGET_TOPIC}")
    has_timing = counts[TIMING_TOPIC] > 0
    names = list(contract.joint_names)
    report = ReplayReport(recording=str(path), policy=contract.name, joint_names=names,
                          recording_complete=mcap_io.recording_info(path).complete,
                          max_abs_diff=np.zeros(len(names)), sum_abs_diff=np.zeros(len(names)))
    slots = contract.slots
    t0_ns = events[0][0]

    joints = imu = window = None
    joints_ns = window_ns = 0
    skipped_since_last = False  # an unpublished tick (timing topic) since the last recorded tick
    last_tick_ns: int | None = None
    tracking = False
    run: dict | None = None
    tick_times = []

    def not_replayable(reason: str) -> None:
        nonlocal tracking
        report.ticks_not_replayable[reason] = report.ticks_not_replayable.get(reason, 0) + 1
        tracking = False

    for t_ns, _, topic, msg in events:
        if topic == JOINT_STATES_TOPIC:
            try:
                joints, joints_ns = joint_state_arrays(msg), t_ns
            except ValueError:
                pass  # the node ignores such a message too and keeps the previous one
        elif topic == IMU_TOPIC:
            imu = imu_arrays(msg)
        elif topic == MOTION_TARGET_TOPIC:
            try:
                candidate = decode_window(msg, dt=dt, min_horizon_s=horizon_s, conventions=contract.reference)
                check_window_timing(candidate, t_ns * 1e-9, max_age, horizon_s)
            except MotionTargetError as exc:
                report.windows_refused[exc.reason] = report.windows_refused.get(exc.reason, 0) + 1
                continue
            window, window_ns = candidate, t_ns
            report.windows_accepted += 1
        elif topic == TIMING_TOPIC:
            if len(msg.data) >= 3 and msg.data[2] == 0.0:
                skipped_since_last = True
        else:  # a recorded tick
            report.ticks_recorded += 1
            tick_times.append(t_ns)
            # Did the node reset its policy at this tick? True / False, or None: cannot tell (the
            # first recorded tick without the timing topic).
            if has_timing:
                node_reset = skipped_since_last
            elif last_tick_ns is None:
                node_reset = None
            else:
                node_reset = (t_ns - last_tick_ns) * 1e-9 > RESET_GAP_STEPS * dt
            reset = bool(node_reset) or not tracking
            last_tick_ns, skipped_since_last = t_ns, False
            if list(msg.name) != names:
                raise RecordingError(f"{path}: {JOINT_TARGETS_TOPIC} names {len(msg.name)} joints "
                                     f"({', '.join(list(msg.name)[:3])}, ...) but policy {contract.name} drives "
                                     f"{len(names)} ({', '.join(names[:3])}, ...); pass the policy that ran with --policy")
            if joints is None or imu is None:
                not_replayable("no_state")
                continue
            if window is None:
                not_replayable("no_window")
                continue
            now = _seconds(msg.header.stamp)  # as the node's stamp says; ns in a float lose ~1e-7 s
            state = RobotState(stamp=now, joint_pos=joints[0], joint_vel=joints[1], imu_quat=imu[0],
                               imu_gyro=imu[1], imu_acc=imu[2], joint_tau=joints[2])
            try:
                if reset:
                    tracker.reset(state)
                command = tracker.step(state, window, now)
            except ValueError:
                not_replayable("policy_error")
                continue
            if reset:
                # start_recorded False: the node was already tracking here, with a history this
                # replay lacks, so the first ticks of this run may differ (history_length ticks).
                run = {"start_s": round((t_ns - t0_ns) * 1e-9, 4), "ticks": 0, "start_recorded": node_reset}
                report.runs.append(run)
            tracking = True
            run["ticks"] += 1
            diff = np.abs(command.q[slots] - np.asarray(msg.position, dtype=np.float64))
            report.ticks_compared += 1
            report.sum_abs_diff += diff
            report.tick_max_diff.append(float(diff.max()))
            report.max_abs_diff = np.maximum(report.max_abs_diff, diff)
            i = int(np.argmax(diff))
            if not report.worst or diff[i] > report.worst["abs_rad"]:
                report.worst = {"joint": names[i], "abs_rad": float(diff[i]), "t_s": round((t_ns - t0_ns) * 1e-9, 4)}
            report.state_age_ms.append((t_ns - joints_ns) * 1e-6)
            report.trace.append((round((t_ns - t0_ns) * 1e-9, 6), len(report.runs) - 1, run["ticks"] - 1, float(diff[i]),
                                 names[i], round((t_ns - joints_ns) * 1e-6, 3), round((t_ns - window_ns) * 1e-6, 3)))
    if len(tick_times) > 1:
        report.tick_period_ms = float(np.median(np.diff(tick_times)) * 1e-6)
    return report


# ----------------------------------------------------------------------------- CLI

def cmd_record(args) -> int:
    from rclpy.parameter import Parameter

    from gmt_ros.adapters.mcap_io import RecordingError
    from gmt_ros.nodes.recorder_node import RecorderConfigError, record

    if args.seconds is not None and not (math.isfinite(args.seconds) and args.seconds > 0):
        raise UsageError(f"--seconds must be positive, got {args.seconds}")
    overrides = [Parameter("output", value=args.out)]
    if args.topics:
        overrides.append(Parameter("topics", Parameter.Type.STRING_ARRAY, list(args.topics)))
    if args.regex:
        overrides.append(Parameter("topic_regex", value=args.regex))
    if args.exclude:
        overrides.append(Parameter("exclude_regex", value=args.exclude))
    try:
        summary = record(parameter_overrides=overrides, seconds=args.seconds, args=[])
    except (RecorderConfigError, RecordingError) as exc:
        raise UsageError(str(exc)) from None
    for topic, n in sorted(summary["topics"].items()):
        print(f"{n:8d}  {topic}")
    print(f"{summary['messages']} messages on {len(summary['topics'])} topics in {summary['seconds']:.1f} s "
          f"-> {summary['output']}")
    return 0


def cmd_replay(args) -> int:
    if args.window_max_age is not None and not args.window_max_age > 0:
        raise UsageError(f"--window-max-age must be positive, got {args.window_max_age}")
    try:
        report = replay(args.recording, policy=args.policy, window_max_age_s=args.window_max_age)
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    data = report.as_dict()
    if report.ticks_compared:
        print(f"{'joint':32s} {'max abs rad':>12s} {'mean abs rad':>12s}")
        for name, row in data["per_joint"].items():
            print(f"{name:32s} {row['max_abs_rad']:12.3g} {row['mean_abs_rad']:12.3g}")
    if report.ticks_not_replayable:
        print("ticks not replayable: " + ", ".join(f"{k} {v}" for k, v in report.ticks_not_replayable.items()))
    if report.windows_refused:
        print("windows refused: " + ", ".join(f"{k} {v}" for k, v in report.windows_refused.items()))
    print(report.summary_line())
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
    if args.trace:
        Path(args.trace).parent.mkdir(parents=True, exist_ok=True)
        rows = [",".join(TRACE_COLUMNS)] + [",".join(str(v) for v in row) for row in report.trace]
        Path(args.trace).write_text("\n".join(rows) + "\n")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("record", help="record ROS topics to an MCAP file (rosbag2/Foxglove readable)")
    p.add_argument("--out", required=True, help="MCAP file to write (must not exist)")
    p.add_argument("--topics", nargs="+", metavar="TOPIC", help="topics by full name (default: every topic)")
    p.add_argument("--regex", help="also record topics matching this regular expression")
    p.add_argument("--exclude", help="never record topics matching this regular expression")
    p.add_argument("--seconds", type=float, default=None, help="stop after S seconds (default: until Ctrl-C)")
    p.set_defaults(func=cmd_record)

    p = subparsers.add_parser("replay", help="re-run a recording's policy inputs and compare the joint targets")
    p.add_argument("recording", help="MCAP file written by the recorder (or rosbag2's MCAP storage)")
    p.add_argument("--policy", default=DEFAULT_POLICY, help="policy name under models/ or a contract.yaml path")
    p.add_argument("--window-max-age", type=float, default=None,
                   help="seconds; as the policy node's window_max_age_s (default: the node's default)")
    p.add_argument("--json", help="write the report here")
    p.add_argument("--trace", help="write one CSV row per replayed tick here (time, run, difference, input ages)")
    p.set_defaults(func=cmd_replay)
