"""gmt_planner: walk where /cmd_vel (or the remote's sticks) point, by motion matching.

==========================================  ===================================  ==============
what                                        topic                                rate
==========================================  ===================================  ==============
velocity command (geometry_msgs/Twist)      /cmd_vel (in, polled at the tick:    producer's
                                            every sample, best effort depth 10)
the remote's 40 bytes (from the bridge)     /wireless_remote (in, polled at the   bridge: on
                                            tick: newest sample only)            change + 10 Hz
joints and pelvis IMU (leg odometry)        /joint_states, /imu (in, polled at    bridge: 100 Hz
                                            the tick, best effort depth 1)
window of the planned reference             /gmt/motion_target (out)             rate_hz (50)
status JSON (source, command, stream, ...)  /gmt/planner/status (out)            5 Hz
==========================================  ===================================  ==============

The planning is ``gmt_ros.core.locomotion_planner`` (pure Python); this node checks commands
(``gmt_ros.core.velocity_command``: NaN/inf or absurd values are refused and logged, values
beyond the speed limits clamped), picks the command source and publishes windows on a timer.

Sources: the remote's sticks drive while one of them is deflected beyond ``remote_deadzone``
(the operator with the remote overrides a navigation stack); otherwise the newest accepted
/cmd_vel, until ``command_timeout_s`` has passed without one (the publisher stopped or sends only
refused commands): then the target is zero and the reference eases to standing, logged once as
``cmd_vel timed out``. /cmd_vel is subscribed best effort so that both reliable and best-effort
publishers (teleop_twist_keyboard, joy_teleop, Nav2) are heard. It is taken from the DDS reader at
each tick, every sample since the last one in order, each aged from when DDS received it: a command
that waited in the queue while this process was held up is as old as it is (not fresh because its
callback ran late), and a tick after such a stall sees the commands that arrived during it before
deciding that none came (a subscription callback would run after the timer's).

One single-threaded executor: a tick plans one new frame (≈ 0.3 ms), a changed command
re-plans ``window_s`` (a few ms). Windows are stamped with the ROS clock (system time), the
policy's clock; command ages use time.monotonic().

Velocity feedback (``velocity_feedback``): the robot's walking velocity from leg odometry
(``gmt_ros.core.leg_odometry``: the planted foot's motion relative to the pelvis, in IMU axes,
over a gait cycle) slowly corrects the command the planner follows (``VelocityFeedback``), so a
policy that walks slower or sideways less than its reference still meets the command. Without
robot state (no bridge yet, stale samples) there is no correction.
"""
from __future__ import annotations

import json
import math
import sys
import time

import numpy as np
from geometry_msgs.msg import Twist
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import String, UInt8MultiArray
from trajectory_msgs.msg import JointTrajectory

from gmt_ros.core import g1
from gmt_ros.core.leg_odometry import LegOdometry
from gmt_ros.core.planner_config import PARAMETERS, build_planner, feedback_from, split
from gmt_ros.core.remote import decode_remote
from gmt_ros.core.velocity_command import BadVelocityCommand, CommandRamp, check, stick_velocity
from gmt_ros.nodes.gmt_node import GmtNode
from gmt_ros.nodes.polled_topics import monotonic_arrival
from gmt_ros.nodes.qos import STREAM_QOS, stream_qos
from gmt_ros.nodes.run import NodeHelp, run_node
from gmt_ros.nodes.window_codec import encode_window

NODE_NAME = "gmt_planner"  # the top-level key of config/planner.yaml (planner_config reads it there too)
REMOTE_QOS = STATE_QOS = STREAM_QOS  # the newest matters; both reliabilities heard
CMD_QOS = stream_qos(10)  # every command between two ticks (a refused one must not hide a good one)
WINDOW_QOS = STREAM_QOS  # never waits for a reader (gmt_ros.nodes.qos)
STATUS_RATE_HZ = 5.0


class PlannerConfigError(ValueError):
    """A parameter value the planner cannot run with."""


class PlannerNode(GmtNode):
    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, PARAMETERS, PlannerConfigError, **kwargs)
        try:
            clips, settings, limits, rest = split(self.params)
        except ValueError as exc:
            raise PlannerConfigError(str(exc)) from None
        self.params = rest
        started = time.monotonic()
        self.planner = build_planner(clips, settings, limits, rest["clip_dirs"], rest["mirror_clips"],
                                     rest["standing_height"])
        self.limits = limits
        self.commands = CommandRamp(limits, rest["command_timeout_s"])
        self._timed_out_logged = True  # nothing received yet: "timed out" is the initial state, not news
        self._source = "none"
        self._remote: tuple[float, np.ndarray | None] | None = None  # (arrival monotonic, stick command)
        self._last_log: dict[str, float] = {}
        self.refused = 0
        self.accepted = 0

        self._pub_window = self.create_publisher(JointTrajectory, rest["motion_target_topic"], WINDOW_QOS)
        self._pub_status = self.create_publisher(String, rest["status_topic"], 10)
        readers = self.polled_topics(f"{NODE_NAME}_reader")  # inputs taken at the tick
        self._cmd_in = readers.subscribe(Twist, rest["cmd_vel_topic"], CMD_QOS)
        self._remote_in = (readers.subscribe(UInt8MultiArray, rest["remote_topic"], REMOTE_QOS)
                           if rest["remote_enabled"] else None)
        self.feedback = feedback_from(rest)
        self.odometry = LegOdometry()
        self._measured: np.ndarray | None = None
        self._imu_quat: np.ndarray | None = None
        self._joint_cols: tuple[tuple[str, ...], np.ndarray] | None = None
        if self.feedback is not None:
            self._joints_in = readers.subscribe(JointState, rest["joint_states_topic"], STATE_QOS)
            self._imu_in = readers.subscribe(Imu, rest["imu_topic"], STATE_QOS)
        self.create_timer(1.0 / rest["rate_hz"], self._on_tick)
        self.create_timer(1.0 / STATUS_RATE_HZ, self._publish_status)
        db = self.planner.db
        self.get_logger().info(
            f"{len(clips)} clips ({'mirrored, ' if rest['mirror_clips'] else ''}{db.searchable_count} searchable "
            f"frames, built in {time.monotonic() - started:.2f} s); windows of {settings.window_frames} frames at "
            f"{rest['rate_hz']:g} Hz on {rest['motion_target_topic']}; commands on {rest['cmd_vel_topic']}"
            f"{' and the remote sticks' if rest['remote_enabled'] else ''}; limits vx {-limits.max_vx_backward:g}.."
            f"{limits.max_vx:g} m/s, vy ±{limits.max_vy:g} m/s, wz ±{limits.max_wz:g} rad/s; "
            f"timeout {rest['command_timeout_s']:g} s; velocity feedback "
            f"{'from ' + rest['joint_states_topic'] + ' + ' + rest['imu_topic'] if self.feedback else 'off'}")

    def _throttled(self, key: str, level: str, text: str) -> None:
        now = time.monotonic()
        if now - self._last_log.get(key, -math.inf) >= self.params["log_throttle_s"]:
            self._last_log[key] = now
            # one call site per severity: rclpy refuses a call site whose severity changes
            if level == "error":
                self.get_logger().error(text)
            else:
                self.get_logger().warning(text)

    # ------------------------------------------------------------------ inputs

    def accept_twist(self, msg: Twist, now: float | None = None) -> bool:
        """Check a Twist and take it as the /cmd_vel target; False (logged) when refused."""
        now = time.monotonic() if now is None else now
        ignored = {"linear.z": msg.linear.z, "angular.x": msg.angular.x, "angular.y": msg.angular.y}
        try:
            checked = check(msg.linear.x, msg.linear.y, msg.angular.z, self.limits, ignored)
        except BadVelocityCommand as exc:
            self.refused += 1
            self._throttled(f"refused:{exc.reason}", "error",
                            f"refused /cmd_vel ({exc.reason}): {exc}; keeping the last accepted command "
                            f"(it times out {self.params['command_timeout_s']:g} s after it arrived)")
            return False
        if checked.note:
            self._throttled("clamped", "warning", f"/cmd_vel: {checked.note}")
        self.accepted += 1
        self.commands.accept(checked.velocity, now)
        if self._timed_out_logged:
            self._timed_out_logged = False
            self.get_logger().info(f"following /cmd_vel: {np.round(checked.velocity, 3).tolist()}")
        return True

    def _take_commands(self, mono: float) -> None:
        """Every /cmd_vel sample since the last tick, oldest first, at its DDS arrival time."""
        try:
            samples = self._cmd_in.take_all()
        except Exception as exc:  # an undecodable sample: the others were taken before it
            self._throttled("cmd_take", "warning", f"could not take a /cmd_vel sample: {exc!r}")
            return
        now_mono, now_wall = time.monotonic(), time.time()  # received: system time; ages: monotonic
        for msg, received in samples:  # none ahead of this tick's now
            self.accept_twist(msg, min(monotonic_arrival(received, now_mono, now_wall), mono))

    def _stick_command(self, now: float) -> np.ndarray | None:
        if self._remote_in is None:
            return None
        try:
            got = self._remote_in.take_newest()
        except Exception as exc:  # an undecodable sample: keep the previous one
            self._throttled("remote_take", "warning", f"could not take a remote sample: {exc!r}")
            got = None
        if got is not None:
            msg, received = got
            try:
                state = decode_remote(bytes(msg.data))
                stick = stick_velocity(state.lx, state.ly, state.rx, self.limits, self.params["remote_deadzone"])
            except ValueError as exc:
                self._throttled("remote_bad", "warning", f"ignoring a remote sample: {exc}")
                stick = None
            self._remote = (received, stick)
        if self._remote is None or now - self._remote[0] > self.params["remote_timeout_s"]:
            return None
        return self._remote[1]

    def _take(self, reader):
        try:
            return reader.take_newest()
        except Exception as exc:  # an undecodable sample: keep the previous one
            self._throttled("state_take", "warning", f"could not take a state sample: {exc!r}")
            return None

    def _measure(self) -> np.ndarray | None:
        """Feed the newest joint state (with the newest IMU orientation) to the leg odometry; its
        velocity over the last gait cycle, or None."""
        imu = self._take(self._imu_in)
        if imu is not None:
            o = imu[0].orientation
            quat = np.array([o.w, o.x, o.y, o.z])
            norm = float(np.linalg.norm(quat))
            self._imu_quat = quat / norm if math.isfinite(norm) and abs(norm - 1.0) < 0.05 else None
        joints = self._take(self._joints_in)
        if joints is not None and self._imu_quat is not None:
            msg, received = joints
            names = tuple(msg.name)
            if self._joint_cols is None or self._joint_cols[0] != names:
                index = {n: i for i, n in enumerate(names)}
                if any(n not in index for n in g1.JOINT_NAMES):
                    self._throttled("joint_states", "warning", "ignoring /joint_states without all 29 G1 joints")
                    return self.odometry.velocity()
                self._joint_cols = (names, np.array([index[n] for n in g1.JOINT_NAMES], dtype=np.int64))
            q = np.asarray(msg.position, dtype=np.float64)
            if q.shape == (len(names),) and np.all(np.isfinite(q)):
                self.odometry.update(received, q[self._joint_cols[1]], self._imu_quat)
        self._measured = self.odometry.velocity()
        return self._measured

    def target(self, now: float) -> np.ndarray:
        """The velocity to follow now, and which source it came from (``self._source``)."""
        stick = self._stick_command(now)
        if stick is not None:
            self._set_source("remote")
            return stick
        if self.commands.timed_out(now):
            if not self._timed_out_logged:
                self._timed_out_logged = True
                self.get_logger().warning(
                    f"cmd_vel timed out: no accepted command for {self.commands.age(now):.2f} s "
                    f"(timeout {self.commands.timeout_s:g} s); easing to standing")
            self._set_source("none")
            return np.zeros(3)
        self._set_source("cmd_vel")
        return self.commands.target_at(now)

    def _set_source(self, source: str) -> None:
        if source != self._source:
            if source == "remote" or self._source == "remote":
                self.get_logger().info(f"command source: {self._source} -> {source}")
            self._source = source

    # ------------------------------------------------------------------ outputs

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_tick(self) -> None:
        mono = time.monotonic()
        self._take_commands(mono)
        target = self.target(mono)
        correction = None if self.feedback is None else self.feedback.update(mono, target, self._measure())
        window = self.planner.window(self._now(), target, correction)
        self._pub_window.publish(encode_window(window))

    def _publish_status(self) -> None:
        status = {"source": self._source, "accepted": self.accepted, "refused": self.refused,
                  "command_age_s": round(min(self.commands.age(time.monotonic()), 1e6), 3), **self.planner.current,
                  "measured": None if self._measured is None else [round(float(v), 4) for v in self._measured],
                  "correction": None if self.feedback is None else [round(float(v), 4) for v in self.feedback.correction]}
        self._pub_status.publish(String(data=json.dumps(status)))


def main(argv=None) -> int:
    return run_node(PlannerNode, NODE_NAME, argv, short_switch_interval=False,
                    help=NodeHelp("gmt-ros-planner", __doc__, PARAMETERS, "planner.yaml"))


if __name__ == "__main__":
    sys.exit(main())
