"""The planner node end to end over DDS on loopback: ``python -m gmt_ros.nodes.planner_node`` in a
subprocess with config/planner.yaml (topics under a unique prefix); this process publishes
/cmd_vel (geometry_msgs/Twist) and the remote's bytes and decodes every window.

Checked: windows from the start, standing at the default pose before any command; a forward
command moves the reference at that speed; NaN, inf and absurd commands are refused with a log
line naming the reason and change no window (standing stays standing; mixed into a good command's
stream they leave the followed command as it was); a publisher that stops -> "cmd_vel timed out"
and the reference eases to standing; a command beyond the limits is clamped; the remote's stick
overrides /cmd_vel while deflected; a bad parameter stops the node at start with its reason.
No rate or latency is asserted: every step waits for behaviour (test/waiting.py).
"""
import json
import math
import os
import subprocess
import sys
import threading
import time
import uuid

import numpy as np
import pytest
import rclpy
from geometry_msgs.msg import Twist
from node_process import REPO, NodeProcess
from rclpy.executors import SingleThreadedExecutor
from std_msgs.msg import String, UInt8MultiArray
from trajectory_msgs.msg import JointTrajectory
from waiting import wait_until

from gmt_ros.core import g1
from gmt_ros.core.playback import STANDING_HEIGHT
from gmt_ros.core.remote import encode_remote
from gmt_ros.nodes.qos import stream_qos
from gmt_ros.nodes.window_codec import decode_window
from sim2sim.velocity_tracking import averaged_velocity

pytestmark = pytest.mark.slow

TIMEOUT_S = 0.5  # config/planner.yaml command_timeout_s
BAD_COMMANDS = {  # (vx, vy, wz) -> the refusal the node logs
    (math.nan, 0.0, 0.0): "refused /cmd_vel (not_finite): velocity command vx is nan",
    (0.0, math.inf, 0.0): "refused /cmd_vel (not_finite): velocity command vy is inf",
    (50.0, 0.0, 0.0): "refused /cmd_vel (absurd): velocity command vx = 50 m/s",
    (0.0, 0.0, -40.0): "refused /cmd_vel (absurd): velocity command wz = -40 rad/s",
}


class PlannerProcess(NodeProcess):
    def __init__(self, **params):
        prefix = f"/t{uuid.uuid4().hex[:8]}"
        self.names = {k: f"{prefix}/{k}" for k in ("cmd_vel", "motion_target", "status", "remote", "joint_states", "imu")}
        params = {"cmd_vel_topic": self.names["cmd_vel"], "motion_target_topic": self.names["motion_target"],
                  "status_topic": self.names["status"], "remote_topic": self.names["remote"],
                  "joint_states_topic": self.names["joint_states"], "imu_topic": self.names["imu"], **params}
        super().__init__("gmt_ros.nodes.planner_node", "planner.yaml", params)


class Operator:
    """/cmd_vel and remote publisher, window and status recorder (wall time of arrival)."""

    def __init__(self, names):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(f"planner_node_test_{os.getpid()}", context=self.context)
        self.lock = threading.Lock()
        self.windows: list[tuple[float, object]] = []
        self.statuses: list[dict] = []
        self.node.create_subscription(JointTrajectory, names["motion_target"], self._on_window,
                                      stream_qos(100))  # the windows are a best-effort stream (gmt_ros.nodes.qos)
        self.node.create_subscription(String, names["status"], self._on_status, 50)
        self.pub_cmd = self.node.create_publisher(Twist, names["cmd_vel"], 10)
        self.pub_remote = self.node.create_publisher(UInt8MultiArray, names["remote"], 10)
        self.command: tuple | None = None  # published at 20 Hz while set
        self.commands: list[tuple] | None = None  # or these in turn, one per tick
        self.node.create_timer(0.05, self._send)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self):
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def _on_window(self, msg):
        with self.lock:
            self.windows.append((time.monotonic(), decode_window(msg)))

    def _on_status(self, msg):
        with self.lock:
            self.statuses.append(json.loads(msg.data))

    def _send(self):
        if self.commands:
            self.commands.append(self.commands.pop(0))
            command = self.commands[-1]
        else:
            command = self.command
        if command is not None:
            vx, vy, wz = command
            msg = Twist()
            msg.linear.x, msg.linear.y, msg.angular.z = float(vx), float(vy), float(wz)
            self.pub_cmd.publish(msg)

    def remote(self, **sticks):
        self.pub_remote.publish(UInt8MultiArray(data=list(encode_remote(**sticks))))

    def since(self, t0):
        with self.lock:
            return [w for t, w in self.windows if t >= t0]

    def status(self) -> dict:
        with self.lock:
            return dict(self.statuses[-1]) if self.statuses else {}

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture(scope="module")
def graph():
    planner = PlannerProcess()
    operator = Operator(planner.names)
    try:
        planner.wait_for_log("windows of 121 frames", timeout=60)
        wait_until(lambda: operator.windows and operator.statuses, 30, "a window and a status from the planner")
        yield planner, operator
    finally:
        operator.close()
        assert planner.stop() == 0, planner.log()


def _frame0(windows):
    pos = np.array([w.frames.root_pos[0] for w in windows])
    quat = np.array([w.frames.root_quat[0] for w in windows])
    return np.array([w.start_time for w in windows]), pos, quat


def _is_standing(window) -> bool:
    f = window.frames
    return (np.allclose(f.joint_pos, g1.DEFAULT_POSE, atol=1e-9) and np.allclose(f.root_pos[:, 2], STANDING_HEIGHT)
            and not np.any(f.root_lin_vel) and not np.any(f.joint_vel))


def _velocity_since(operator, t0, span_s=1.5):
    """The reference's averaged velocity (vx, vy, wz) over its last ``span_s`` of windows received
    since ``t0`` (None until there are that many)."""
    windows = operator.since(t0)
    if len(windows) < 3 or windows[-1].start_time - windows[0].start_time < span_s + 0.5:
        return None
    recent, last = [], -math.inf
    for w in windows:  # a window repeated on a late tick (same start time) says nothing new
        if w.start_time > last and w.start_time >= windows[-1].start_time - span_s:
            recent.append(w)
            last = w.start_time
    if len(recent) < 2:
        return None
    times, pos, quat = _frame0(recent)
    centres, v = averaged_velocity(times, pos, quat)
    # None, not a NaN mean, while the windows received do not yet span one averaging window (a
    # loaded machine drops best-effort windows at this subscriber, leaving gaps)
    return v.mean(axis=0) if len(centres) else None


def _walks_at(operator, command, tol, what, timeout_s=20.0):
    """Publish ``command`` until the reference's velocity is within ``tol`` (per axis vx, vy, wz;
    inf: not checked) of the command."""
    operator.command = command
    t0 = time.monotonic()
    expected = np.asarray(command, dtype=float)

    def close():
        v = _velocity_since(operator, t0)
        return v is not None and bool(np.all(np.abs(v - expected) < np.asarray(tol))) and v.tolist()

    return wait_until(close, timeout_s, what)


def _standing_windows_since(operator, t0, count):
    windows = wait_until(lambda: len(operator.since(t0)) >= count and operator.since(t0), 20,
                         f"{count} windows")
    return windows


def test_standing_windows_before_any_command(graph):
    _planner, operator = graph
    windows = _standing_windows_since(operator, time.monotonic(), 20)
    assert all(_is_standing(w) for w in windows)
    assert all(len(w.frames) == 121 and w.joint_mask.all() for w in windows)
    assert operator.status()["source"] == "none"


def test_bad_commands_are_refused_by_name_and_change_no_window(graph):
    """While standing (no accepted command), NaN, inf and absurd commands: each refused with its
    reason, none accepted, every window meanwhile the standing one."""
    planner, operator = graph
    wait_until(lambda: operator.status().get("standing") and operator.status()["source"] == "none", 20,
               "the planner standing with no command")
    before = operator.status()
    n_log = len(planner.lines)
    t0 = time.monotonic()
    try:
        for command, line in BAD_COMMANDS.items():  # one at a time: the log is throttled per reason
            operator.command = command
            planner.wait_for_log(line, after=n_log, timeout=20)
        wait_until(lambda: operator.status()["refused"] >= before["refused"] + len(BAD_COMMANDS), 20,
                   "the status counting the refusals")
    finally:
        operator.command = None
    windows = operator.since(t0)
    assert windows and all(_is_standing(w) for w in windows)
    status = operator.status()
    assert status["accepted"] == before["accepted"] and status["source"] == "none"
    assert not any("following /cmd_vel" in line for line in planner.lines[n_log:])


def test_bad_commands_among_good_ones_leave_the_followed_command(graph):
    """A stream where every other /cmd_vel is garbage: the good one is followed as if alone (the
    target stays it, the reference walks at it, no window carries a non-finite value)."""
    planner, operator = graph
    good = (0.4, 0.0, 0.0)
    _walks_at(operator, good, (0.06, 0.06, math.inf), "the reference walking forward at 0.4 m/s")
    n_log = len(planner.lines)
    t0 = time.monotonic()
    operator.commands = [good, (math.nan, 0.0, 0.0), good, (50.0, 0.0, 0.0)]
    try:
        planner.wait_for_log(BAD_COMMANDS[(math.nan, 0.0, 0.0)], after=n_log, timeout=20)
        planner.wait_for_log(BAD_COMMANDS[(50.0, 0.0, 0.0)], after=n_log, timeout=20)
        v = wait_until(lambda: (v := _velocity_since(operator, t0)) is not None and v.tolist(), 20,
                       "1.5 s of windows among the bad commands")
    finally:
        operator.commands = None
        operator.command = None
    assert abs(v[0] - 0.4) < 0.06 and abs(v[1]) < 0.06, v
    status = operator.status()
    assert status["target"] == [0.4, 0.0, 0.0] and status["source"] == "cmd_vel", status
    for w in operator.since(t0):
        assert np.all(np.isfinite(w.frames.root_pos)) and np.all(np.isfinite(w.frames.joint_pos))
    timed_out = [line for line in planner.lines[n_log:] if "cmd_vel timed out" in line]
    assert not timed_out, "\n".join(planner.lines[n_log:])


def test_stopped_publisher_times_out_to_standing(graph):
    planner, operator = graph
    _walks_at(operator, (0.0, 0.0, 0.6), (math.inf, math.inf, 0.1), "the reference turning at 0.6 rad/s")
    assert not operator.status()["standing"]
    n_log = len(planner.lines)
    operator.command = None  # the publisher stops
    t_stop = time.monotonic()
    planner.wait_for_log("cmd_vel timed out", after=n_log, timeout=20)
    line = next(x for x in planner.lines[n_log:] if "cmd_vel timed out" in x)
    age = float(line.split("no accepted command for ")[1].split(" s")[0])
    assert age >= TIMEOUT_S  # never before the timeout (the age the node saw)
    wait_until(lambda: operator.since(t_stop) and _is_standing(operator.since(t_stop)[-1]), 20,
               "the reference standing after the timeout")
    wait_until(lambda: operator.status()["source"] == "none" and operator.status()["standing"], 20,
               "the status saying standing with no command")


def test_clamped_command_and_remote_override(graph):
    planner, operator = graph
    n_log = len(planner.lines)
    operator.command = (3.0, 0.0, 0.0)  # beyond max_vx 0.8 but not absurd: clamped
    planner.wait_for_log("/cmd_vel: vx 3 clamped to 0.8", after=n_log, timeout=20)
    t0 = time.monotonic()
    wait_until(lambda: (v := _velocity_since(operator, t0)) is not None and abs(v[0] - 0.8) < 0.1, 20,
               "the reference walking at the clamped 0.8 m/s")
    # right stick fully right while /cmd_vel still says forward: the remote turns clockwise
    stop = threading.Event()

    def hold_stick():
        while not stop.is_set():
            operator.remote(rx=1.0)
            time.sleep(0.05)

    holder = threading.Thread(target=hold_stick, daemon=True)
    holder.start()
    try:
        planner.wait_for_log("command source: cmd_vel -> remote", after=n_log, timeout=20)
        t1 = time.monotonic()
        wait_until(lambda: (v := _velocity_since(operator, t1)) is not None and v[2] < -0.8 and abs(v[0]) < 0.15, 20,
                   "the reference turning clockwise at the stick's rate (max_wz 1.0) without walking forward")
    finally:
        stop.set()
        holder.join(timeout=5)
    operator.remote()  # sticks centred: /cmd_vel drives again
    planner.wait_for_log("command source: remote -> cmd_vel", after=n_log, timeout=20)
    operator.command = None


def test_bad_parameter_stops_the_node_with_its_reason():
    proc = subprocess.run([sys.executable, "-m", "gmt_ros.nodes.planner_node", "--ros-args", "--params-file",
                           str(REPO / "config" / "planner.yaml"), "-p", "clips:=['gmt/no_such_clip']"],
                          cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1
    assert "planner clips not in the library: gmt/no_such_clip" in proc.stdout + proc.stderr


def test_a_command_is_aged_from_its_arrival_not_from_when_the_node_took_it():
    """The node in this process, not spun: a good /cmd_vel published, then the node held up for
    0.3 s (as a long callback or a starved process would), then a tick. The tick takes the command
    from the DDS reader and ages it from its arrival (>= 0.3 s old), where a subscription callback
    run late would have called it fresh; a refused command behind it does not hide it (depth 10)."""
    from rclpy.parameter import Parameter

    from gmt_ros.nodes.planner_node import PlannerNode

    prefix = f"/t{uuid.uuid4().hex[:8]}"
    context = rclpy.Context()
    rclpy.init(context=context)
    node = PlannerNode(context=context, parameter_overrides=[
        Parameter(f"{k}_topic", value=f"{prefix}/{k}") for k in ("cmd_vel", "motion_target", "status", "remote")])
    sender = rclpy.create_node(f"planner_aging_test_{os.getpid()}", context=context)
    try:
        pub = sender.create_publisher(Twist, f"{prefix}/cmd_vel", 10)
        wait_until(lambda: pub.get_subscription_count() > 0, 10, "the planner's /cmd_vel reader")
        good, bad = Twist(), Twist()
        good.linear.x, bad.linear.x = 0.4, math.nan
        published = time.monotonic()
        pub.publish(good)
        pub.publish(bad)
        time.sleep(0.3)  # the node is held up: nothing takes the samples
        node._on_tick()
        now = time.monotonic()
        assert (node.accepted, node.refused) == (1, 1)  # both taken, in order: the refused one kept the good
        assert 0.3 <= node.commands.age(now) <= now - published + 1e-3  # (1 ms: the two clocks, read apart)
    finally:
        sender.destroy_node()
        node.destroy_node()
        rclpy.shutdown(context=context)
