"""gmt_policy: robot state + motion target in, PD joint targets out, at the policy's rate.

==========================================  ========================  ============================
work                                        callback group            rate
==========================================  ========================  ============================
/joint_states, /imu → latest state          polled at each tick       bridge's state rate
/gmt/motion_target → decode + checks →      subscription              producer rate (≈ 25-50 Hz)
latest accepted window
tick: state + window → TrackingPolicy.step  timer                     rate_hz (contract: 50 Hz),
→ /gmt/joint_targets, /gmt/policy/timing                              fixed timer deadlines
/diagnostics                                timer                     1 Hz
==========================================  ========================  ============================

One SingleThreadedExecutor runs everything on one thread; measured on 2 cores, rclpy's
MultiThreadedExecutor cost about 5x the CPU per callback (thread pool, futures) and its second
thread contended for the GIL with the tick. The robot state is not delivered through it: each
tick takes the newest /joint_states and /imu samples from their DDS readers
(``gmt_ros.nodes.polled_topics``), which saves the executor's ~0.8 ms per message (200 a second)
and reads the state as fresh as it arrived. QoS, chosen on purpose:

Every stream in and out is best effort (gmt_ros.nodes.qos: a reliable writer in Fast DDS can hold
the tick 100 ms for a reader that has just joined; a best-effort reader hears both kinds of writer):
- /joint_states, /imu: depth 1. Only the newest sample matters; a lost one is replaced 2 ms
  later, and a reliable queue would deliver old samples late instead.
- /gmt/motion_target: depth 2. Windows come at 50 Hz and each one replaces the last,
  but a dropped window at a clip change would delay the change; depth 2 absorbs one burst.
  Producers may publish either way (the default reliable QoS is heard).
- /gmt/joint_targets: best effort, depth 1; a subscriber must be best effort too (a reliable one
  does not match: `ros2 topic echo` picks the publisher's QoS by itself).
  Each target carries the identity of the contract it was computed under (name@content hash,
  ``ContractId.wire``) in header.frame_id: the bridge builds the motor command from its own load
  of the contract and refuses targets of another one. The identity travels with every target
  (a few bytes) rather than on a latched topic or a parameter, so no target can be read under a
  contract that was not the one it was made for, even across a restart of either node.

Each tick publishes nothing (the bridge's supervisor then damps on the stale target) while the robot state is missing
or older than state_max_age_s, or no motion target has been accepted yet; the reason is logged,
at most once per log_throttle_s per reason. Motion targets are checked when they arrive (decoded,
not older than window_max_age_s, reaching the policy's look-ahead): a refused window is never
given to the policy. The latest accepted window stays in use until a newer one is accepted, for at
most window_timeout_s: then the producer is taken to have stopped, and the node follows an easing
from the reference at that moment to the standing pose (stale_blend_s), held until a new window
is accepted, so a robot is not left in mid-motion or dropped into damping. The first tick of every tracking run (after start-up or
after publishing nothing) resets the policy's history and last action, as at an episode start.
"""
from __future__ import annotations

import math
import sys
import threading
import time
from collections import deque

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Float32MultiArray, MultiArrayDimension
from trajectory_msgs.msg import JointTrajectory

from gmt_ros.core import g1
from gmt_ros.core.contract import DEFAULT_POLICY, load_contract
from gmt_ros.core.frames import MotionFrames, MotionWindow
from gmt_ros.core.playback import ease_to_standing
from gmt_ros.core.policy import TrackingPolicy
from gmt_ros.core.state import RobotState
from gmt_ros.core.window_check import MotionTargetError, check_window_timing
from gmt_ros.nodes.gmt_node import GmtNode
from gmt_ros.nodes.parameters import require_positive
from gmt_ros.nodes.qos import STREAM_QOS, stream_qos
from gmt_ros.nodes.run import NodeHelp, run_node
from gmt_ros.nodes.window_codec import decode_window, seconds_to_time

NODE_NAME = "gmt_policy"
TIMING_FIELDS = ("period_ms", "step_ms", "published")

# name: (default, type, description)
PARAMETERS = {
    "contract": (DEFAULT_POLICY, str, "policy contract name (models/<name>/contract.yaml) or path"),
    "rate_hz": (0.0, float, "control rate; 0 = the contract's rate_hz"),
    "joint_states_topic": ("/joint_states", str, "sensor_msgs/JointState robot joints by name"),
    "imu_topic": ("/imu", str, "sensor_msgs/Imu of the pelvis IMU"),
    "motion_target_topic": ("/gmt/motion_target", str, "trajectory_msgs/JointTrajectory motion windows"),
    "joint_targets_topic": ("/gmt/joint_targets", str, "sensor_msgs/JointState PD targets by joint name (out)"),
    "timing_topic": ("/gmt/policy/timing", str, "std_msgs/Float32MultiArray per tick: period_ms, step_ms, published"),
    "window_max_age_s": (0.5, float, "refuse a motion target whose first frame is older than this on arrival"),
    "window_timeout_s": (0.5, float, "no motion target accepted for this long: ease to the standing pose and hold it"),
    "stale_blend_s": (1.0, float, "how long that easing to the standing pose takes"),
    "state_max_age_s": (0.1, float, "publish nothing when /joint_states or /imu is older than this"),
    "log_throttle_s": (2.0, float, "log each reason for publishing nothing at most this often"),
}

STATE_QOS = STREAM_QOS
TARGET_IN_QOS = stream_qos(2)
TARGET_OUT_QOS = STREAM_QOS
LATE_TICK_PERIODS = 2.5  # a tick later than this many periods after the previous one is logged
SLOW_PUBLISH_S = 0.01  # a PD target publish slower than this is logged


class PolicyConfigError(ValueError):
    """A parameter value the policy node cannot run with."""


class PolicyHooks:
    """An observation point for measurement tools (``gmt-ros bench``), given to
    ``PolicyNode(hooks=)`` or ``main(hooks=)``; does nothing here. Runs in the tick, must be quick."""

    def tick(self, t: float, duration_s: float, step_s: float, target_stamp_ns: int, state_stamp_ns: int,
             state_received: float) -> None:
        """End of a control tick that began at time.monotonic() ``t``: its duration and the policy
        step's (NaN when none ran), the header stamp of the PD target it published (0: none), and
        the header stamp and DDS receipt time (time.monotonic()) of the /joint_states it used (0 and
        NaN: none)."""


class TickStats:
    """Tick period and step time over the last ``span_s`` seconds (monotonic clock)."""

    def __init__(self, span_s: float = 1.0):
        self.span_s = span_s
        self._ticks: deque[tuple[float, float, float, bool]] = deque()  # (t, period, step or nan, published)
        self._lock = threading.Lock()

    def add(self, t: float, period_s: float, step_s: float, published: bool) -> None:
        with self._lock:
            self._ticks.append((t, period_s, step_s, published))
            while self._ticks and self._ticks[0][0] < t - self.span_s:
                self._ticks.popleft()

    def summary(self, now: float) -> dict[str, float]:
        with self._lock:
            ticks = [x for x in self._ticks if x[0] >= now - self.span_s]
        periods = np.array([x[1] for x in ticks if math.isfinite(x[1])]) * 1e3
        steps = np.array([x[2] for x in ticks if math.isfinite(x[2])]) * 1e3

        def pct(a, q):
            return float(np.percentile(a, q)) if a.size else float("nan")

        return {
            "ticks_per_s": len(ticks) / self.span_s,
            "published_per_s": sum(x[3] for x in ticks) / self.span_s,
            "period_ms_p50": pct(periods, 50), "period_ms_p99": pct(periods, 99),
            "period_ms_max": float(periods.max()) if periods.size else float("nan"),
            "step_ms_p50": pct(steps, 50), "step_ms_p99": pct(steps, 99),
            "step_ms_max": float(steps.max()) if steps.size else float("nan"),
        }


class PolicyNode(GmtNode):
    def __init__(self, hooks: PolicyHooks | None = None, **kwargs):
        super().__init__(NODE_NAME, PARAMETERS, PolicyConfigError, **kwargs)
        self._hooks = hooks
        p = self.params
        require_positive(p, ("window_max_age_s", "window_timeout_s", "stale_blend_s", "state_max_age_s", "log_throttle_s"), PolicyConfigError)
        self.policy = TrackingPolicy(load_contract(p["contract"]))
        contract = self.policy.contract
        rate = p["rate_hz"] or contract.rate_hz
        if not (math.isfinite(rate) and rate > 0):
            raise PolicyConfigError(f"parameter rate_hz must be positive (or 0 for the contract's), got {rate}")
        if abs(rate - contract.rate_hz) > 1e-9:
            self.get_logger().warning(f"running at {rate:g} Hz but {contract.name} was trained at {contract.rate_hz:g} Hz")
        self.dt = 1.0 / rate
        # How far ahead of the tick the observation reads the reference.
        self.horizon_s = max(contract.future_offsets, default=0) * contract.control_dt
        self.table = contract.command_table  # default pose (the safe standing pose) and gains
        self._policy_slots = self.table.policy_slots
        self._policy_names = list(self.table.policy_names)
        self._frame_id = contract.identity.wire
        self._warm_up()

        self._lock = threading.Lock()
        self._joints = None  # (receipt monotonic time, pos (29,), vel (29,), tau (29,), header stamp ns)
        self._state_source = (0, math.nan)  # (header stamp ns, receipt) of the /joint_states the tick uses
        self._imu = None  # (receipt monotonic time, quat wxyz, gyro, acc)
        self._window = None  # latest accepted MotionWindow
        self._window_at = 0.0  # when it was accepted (time.monotonic())
        self._fallback = None  # the settle-to-standing window once the motion target went stale
        self._joint_order: tuple[tuple[str, ...], np.ndarray] | None = None
        self._last_log: dict[str, float] = {}
        self._tracking = False
        self._skip_reason = "not started"
        self._last_tick: float | None = None
        self.stats = TickStats()
        self.counts = {"ticks": 0, "published": 0, "windows": 0, "rejected_windows": 0, "stale_windows": 0,
                       "bad_state": 0, "policy_errors": 0}

        readers = self.polled_topics(f"{NODE_NAME}_state_reader")
        self._joint_states_in = readers.subscribe(JointState, p["joint_states_topic"], STATE_QOS)
        self._imu_in = readers.subscribe(Imu, p["imu_topic"], STATE_QOS)
        self.create_subscription(JointTrajectory, p["motion_target_topic"], self._on_motion_target, TARGET_IN_QOS)
        self._pub_targets = self.create_publisher(JointState, p["joint_targets_topic"], TARGET_OUT_QOS)
        self._pub_timing = self.create_publisher(Float32MultiArray, p["timing_topic"], STREAM_QOS)
        self._pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(self.dt, self._on_tick)
        self.create_timer(1.0, self._on_diagnostics)
        self.get_logger().info(
            f"policy {contract.identity} ({len(self._policy_names)} joints, looks {self.horizon_s:.2f} s ahead) at "
            f"{rate:g} Hz; state from {p['joint_states_topic']} + {p['imu_topic']}, motion targets from "
            f"{p['motion_target_topic']}, joint targets to {p['joint_targets_topic']}"
        )

    def _warm_up(self) -> None:
        """One throw-away step, so the first real tick does not pay onnxruntime's first-run cost
        (tens to hundreds of ms, a gap the bridge would see as a stale target)."""
        n = g1.NUM_BODY_JOINTS
        frames = MotionFrames(root_pos=np.tile([0.0, 0.0, 0.78], (2, 1)), root_quat=np.tile([1.0, 0.0, 0.0, 0.0], (2, 1)),
                              root_lin_vel=np.zeros((2, 3)), root_ang_vel=np.zeros((2, 3)),
                              joint_pos=np.tile(self.table.default_pose, (2, 1)), joint_vel=np.zeros((2, n)))
        window = MotionWindow(start_time=0.0, dt=self.dt, frames=frames, joint_mask=np.ones(n, dtype=bool))
        state = RobotState(stamp=0.0, joint_pos=self.table.default_pose.copy(), joint_vel=np.zeros(n),
                           imu_quat=np.array([1.0, 0.0, 0.0, 0.0]), imu_gyro=np.zeros(3))
        for _ in range(3):
            self.policy.step(state, window, 0.0)
        self.policy.reset()

    def _log_once_in_a_while(self, reason: str, text: str, error: bool = False) -> None:
        """One line per reason at most every log_throttle_s (rclpy's throttle is per call site)."""
        now = time.monotonic()
        if now - self._last_log.get(reason, -math.inf) >= self.params["log_throttle_s"]:
            self._last_log[reason] = now
            (self.get_logger().error if error else self.get_logger().warning)(text)

    # ------------------------------------------------------------------ inputs

    def _slots_for(self, names) -> np.ndarray:
        names = tuple(names)
        if self._joint_order is None or self._joint_order[0] != names:
            index = {n: i for i, n in enumerate(names)}
            missing = [n for n in g1.JOINT_NAMES if n not in index]
            if missing:
                raise ValueError(f"{self.params['joint_states_topic']} lacks joints {', '.join(missing)}")
            # column of each motor slot in the message
            self._joint_order = (names, np.array([index[n] for n in g1.JOINT_NAMES], dtype=np.int64))
        return self._joint_order[1]

    def _poll_state(self) -> None:
        """Take the newest state samples that arrived since the last tick."""
        for reader, handle in ((self._joint_states_in, self._on_joint_states), (self._imu_in, self._on_imu)):
            try:
                got = reader.take_newest()
            except Exception as exc:  # an undecodable sample: say so, keep the previous one
                self.counts["bad_state"] += 1
                self._log_once_in_a_while("take_state", f"could not take a state sample: {exc!r}")
                continue
            if got is not None:
                handle(*got)

    def _on_joint_states(self, msg: JointState, received: float | None = None) -> None:
        received = time.monotonic() if received is None else received
        try:
            cols = self._slots_for(msg.name)
            n = len(msg.name)
            if len(msg.position) != n or len(msg.velocity) != n:
                raise ValueError(f"{self.params['joint_states_topic']} has {len(msg.position)} positions and "
                                 f"{len(msg.velocity)} velocities for {n} names")
            pos = np.asarray(msg.position, dtype=np.float64)[cols]
            vel = np.asarray(msg.velocity, dtype=np.float64)[cols]
            tau = np.asarray(msg.effort, dtype=np.float64)[cols] if len(msg.effort) == n else np.zeros(g1.NUM_BODY_JOINTS)
        except ValueError as exc:
            self.counts["bad_state"] += 1
            self._log_once_in_a_while("bad_joint_states", f"ignored joint states: {exc}")
            return
        with self._lock:
            self._joints = (received, pos, vel, tau, msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec)

    def _on_imu(self, msg: Imu, received: float | None = None) -> None:
        received = time.monotonic() if received is None else received
        o = msg.orientation
        quat = np.array([o.w, o.x, o.y, o.z])  # ROS x,y,z,w -> core w,x,y,z
        gyro = np.array([msg.angular_velocity.x, msg.angular_velocity.y, msg.angular_velocity.z])
        acc = np.array([msg.linear_acceleration.x, msg.linear_acceleration.y, msg.linear_acceleration.z])
        with self._lock:
            self._imu = (received, quat, gyro, acc)

    def _on_motion_target(self, msg: JointTrajectory) -> None:
        now = self._now()
        try:
            window = decode_window(msg, dt=self.dt, min_horizon_s=self.horizon_s,
                                   conventions=self.policy.contract.reference)
            check_window_timing(window, now, self.params["window_max_age_s"], self.horizon_s)
        except MotionTargetError as exc:
            self.counts["rejected_windows"] += 1
            self._log_once_in_a_while(f"window_{exc.reason}", f"refused motion target ({exc.reason}): {exc}")
            return
        with self._lock:
            self._window, self._window_at = window, time.monotonic()
        self.counts["windows"] += 1

    # ------------------------------------------------------------------ control tick

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _stale_fallback(self, window, window_at: float, mono: float, now: float):
        """The window to follow: the latest accepted one, or, once none has been accepted for
        window_timeout_s (the producer stopped), an easing from the reference at that moment to
        the standing pose, held until a new window is accepted."""
        if window is None or mono - window_at <= self.params["window_timeout_s"]:
            if self._fallback is not None and window is not None:
                self._fallback = None
                self.get_logger().info("motion target resumed: following the new windows again")
            return window
        if self._fallback is None:
            blend = self.params["stale_blend_s"]
            # The contract's standing pose (held joints at their targets), not a generic one.
            self._fallback = ease_to_standing(window, now, blend, self.horizon_s, self.dt, self.table.default_pose)
            self.counts["stale_windows"] += 1
            self.get_logger().warning(
                f"motion target stale: none accepted for {mono - window_at:.2f} s (window_timeout_s "
                f"{self.params['window_timeout_s']:g}): easing to the standing pose over {blend:g} s and holding it")
        return self._fallback

    def _robot_state(self, mono: float) -> tuple[RobotState | None, str, str]:
        """(state, "", "") or (None, reason code, what is wrong)."""
        with self._lock:
            joints, imu = self._joints, self._imu
        limit = self.params["state_max_age_s"]
        for key, label, sample, topic in (("joint_states", "joint states", joints, "joint_states_topic"),
                                          ("imu", "IMU", imu, "imu_topic")):
            if sample is None:
                return None, f"no_{key}", f"no {label} received yet on {self.params[topic]}"
            if mono - sample[0] > limit:
                return None, f"stale_{key}", (f"last {label} on {self.params[topic]} arrived {mono - sample[0]:.3f} s "
                                              f"ago (state_max_age_s {limit:g})")
        state = RobotState(stamp=min(joints[0], imu[0]), joint_pos=joints[1], joint_vel=joints[2], imu_quat=imu[1],
                           imu_gyro=imu[2], imu_acc=imu[3], joint_tau=joints[3])
        try:
            state.validate()
        except ValueError as exc:
            return None, "bad_state", f"robot state unusable: {exc}"
        self._state_source = (joints[4], joints[0])
        return state, "", ""

    def _on_tick(self) -> None:
        start = time.monotonic()
        self._state_source = (0, math.nan)
        self._poll_state()
        mono = time.monotonic()
        period = mono - self._last_tick if self._last_tick is not None else float("nan")
        self._last_tick = mono
        if period > LATE_TICK_PERIODS * self.dt:  # the bridge damps at 100 ms without a target: say why here
            self._log_once_in_a_while("late_tick", f"tick {1e3 * period:.0f} ms after the previous one (period "
                                      f"{1e3 * self.dt:.0f} ms): this process was starved of CPU or blocked")
        now = self._now()
        self.counts["ticks"] += 1
        step_s = float("nan")
        published = False
        target_stamp_ns = 0
        state, reason, why = self._robot_state(mono)
        with self._lock:
            window, window_at = self._window, self._window_at
        window = self._stale_fallback(window, window_at, mono, now)
        if state is not None and window is None:
            reason, why = "no_window", f"no motion target accepted yet on {self.params['motion_target_topic']}"
        if not reason:
            try:
                if not self._tracking:
                    self.policy.reset(state)
                t0 = time.perf_counter()
                command = self.policy.step(state, window, now)
                step_s = time.perf_counter() - t0
            except ValueError as exc:
                self.counts["policy_errors"] += 1
                reason, why = "policy_error", f"policy step failed: {exc}"
        if reason:
            self._tracking = False
            self._skip_reason = why
            self._log_once_in_a_while(reason, f"publishing no joint targets: {why}", error=reason == "policy_error")
        else:
            publish_start = time.monotonic()
            target_stamp_ns = self._publish_targets(command, now)
            publish_s = time.monotonic() - publish_start
            if publish_s > SLOW_PUBLISH_S:
                self._log_once_in_a_while("slow_publish", f"publishing the PD target took {1e3 * publish_s:.0f} ms")
            self._tracking = True
            self._skip_reason = ""
            published = True
            self.counts["published"] += 1
        self.stats.add(mono, period, step_s, published)
        timing = Float32MultiArray()
        timing.layout.dim = [MultiArrayDimension(label=",".join(TIMING_FIELDS), size=len(TIMING_FIELDS), stride=len(TIMING_FIELDS))]
        timing.data = [period * 1e3, step_s * 1e3, float(published)]
        self._pub_timing.publish(timing)
        if self._hooks is not None:
            self._hooks.tick(start, time.monotonic() - start, step_s, target_stamp_ns, *self._state_source)

    def _publish_targets(self, command, now: float) -> int:
        """Publish the tick's PD target; returns its header stamp in ns."""
        msg = JointState()
        msg.header.stamp = stamp = seconds_to_time(now)
        msg.header.frame_id = self._frame_id
        msg.name = self._policy_names
        msg.position = command.q[self._policy_slots].tolist()
        msg.velocity = command.dq[self._policy_slots].tolist()
        msg.effort = command.tau[self._policy_slots].tolist()
        self._pub_targets.publish(msg)
        return stamp.sec * 1_000_000_000 + stamp.nanosec

    # ------------------------------------------------------------------ diagnostics

    def _on_diagnostics(self) -> None:
        s = self.stats.summary(time.monotonic())
        values = {k: f"{v:.3f}" for k, v in s.items()}
        values.update({k: str(v) for k, v in self.counts.items()})
        values["horizon_s"] = f"{self.horizon_s:.3f}"
        level = DiagnosticStatus.OK if self._tracking else DiagnosticStatus.WARN
        message = "tracking" if self._tracking else f"publishing nothing: {self._skip_reason}"
        status = DiagnosticStatus(level=level, name=f"{NODE_NAME}: {self.policy.contract.name}", message=message,
                                  hardware_id="gmt_ros", values=[KeyValue(key=k, value=v) for k, v in values.items()])
        diag = DiagnosticArray(status=[status])
        diag.header.stamp = self.get_clock().now().to_msg()
        self._pub_diag.publish(diag)


def main(argv=None, hooks: PolicyHooks | None = None) -> int:
    return run_node(lambda: PolicyNode(hooks=hooks), NODE_NAME, argv,
                    help=NodeHelp("gmt-ros-policy", __doc__, PARAMETERS, "policy.yaml"))


if __name__ == "__main__":
    sys.exit(main())
