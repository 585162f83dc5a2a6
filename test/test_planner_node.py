"""The planner node end to end over DDS on loopback: ``python -m gmt_ros.nodes.planner_node`` in a
subprocess with config/planner.yaml (topics under a unique prefix); this process publishes
/cmd_vel (geometry_msgs/Twist) and the remote's bytes and decodes every window.

Checked: windows at 50 Hz from the start, standing at the default pose before any command; a
forward command moves the reference at that speed; NaN, inf and absurd commands are refused
with a log line naming the reason and never reach a window (the last good command stays until
it times out, then the reference stands); a publisher that stops -> "cmd_vel timed out" and
the reference eases to standing; a command beyond the limits is clamped; the remote's stick
overrides /cmd_vel while deflected; a bad parameter stops the node at start with its reason.
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
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import String, UInt8MultiArray
from trajectory_msgs.msg import JointTrajectory

from gmt_ros.core import g1
from gmt_ros.core.playback import STANDING_HEIGHT
from gmt_ros.core.remote import encode_remote
from gmt_ros.nodes.window_codec import decode_window
from sim2sim.velocity_tracking import averaged_velocity

pytestmark = pytest.mark.slow

TIMEOUT_S = 0.5  # config/planner.yaml command_timeout_s


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
                                      QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
        self.node.create_subscription(String, names["status"], self._on_status, 50)
        self.pub_cmd = self.node.create_publisher(Twist, names["cmd_vel"], 10)
        self.pub_remote = self.node.create_publisher(UInt8MultiArray, names["remote"], 10)
        self.command: tuple | None = None  # published at 20 Hz while set
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
        if self.command is not None:
            vx, vy, wz = self.command
            msg = Twist()
            msg.linear.x, msg.linear.y, msg.angular.z = float(vx), float(vy), float(wz)
            self.pub_cmd.publish(msg)

    def remote(self, **sticks):
        self.pub_remote.publish(UInt8MultiArray(data=list(encode_remote(**sticks))))

    def since(self, t0):
        with self.lock:
            return [w for t, w in self.windows if t >= t0]

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
        end = time.monotonic() + 20
        while not operator.windows and time.monotonic() < end:
            time.sleep(0.05)
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


def _walk(operator, command, seconds):
    """Publish ``command`` for ``seconds``; the reference's averaged velocity over the last 1.5 s."""
    operator.command = command
    t0 = time.monotonic()
    time.sleep(seconds)
    times, pos, quat = _frame0(operator.since(t0 + seconds - 1.5))
    return averaged_velocity(times, pos, quat)[1].mean(axis=0)


def test_standing_windows_before_any_command(graph):
    planner, operator = graph
    t0 = time.monotonic()
    time.sleep(1.0)
    windows = operator.since(t0)
    assert 40 <= len(windows) <= 60, len(windows)  # 50 Hz
    assert all(_is_standing(w) for w in windows)
    assert all(len(w.frames) == 121 and w.joint_mask.all() for w in windows)
    with operator.lock:
        assert operator.statuses and operator.statuses[-1]["source"] == "none"


def test_forward_then_bad_commands_then_timeout(graph):
    planner, operator = graph
    v = _walk(operator, (0.4, 0.0, 0.0), 4.0)
    assert abs(v[0] - 0.4) < 0.06 and abs(v[1]) < 0.06, v
    with operator.lock:
        assert operator.statuses[-1]["source"] == "cmd_vel" and not operator.statuses[-1]["standing"]
    # garbage only: NaN, then inf, then absurd speed -> each refused by name; the last good command
    # is followed until it times out, then the reference stands
    n_log = len(planner.lines)
    t_bad = time.monotonic()
    for bad in ((math.nan, 0.0, 0.0), (0.0, math.inf, 0.0), (50.0, 0.0, 0.0), (0.0, 0.0, -40.0)):
        operator.command = bad
        time.sleep(0.15)
    operator.command = (math.nan, 0.0, 0.0)
    planner.wait_for_log("refused /cmd_vel (not_finite): velocity command vx is nan", after=n_log)
    planner.wait_for_log("refused /cmd_vel (absurd): velocity command vx = 50 m/s", after=n_log)
    planner.wait_for_log("cmd_vel timed out", after=n_log)
    time.sleep(2.5)
    operator.command = None
    windows = operator.since(t_bad)
    for w in windows:
        assert np.all(np.isfinite(w.frames.root_pos)) and np.all(np.isfinite(w.frames.joint_pos))
    assert _is_standing(windows[-1])
    # still walking just after the garbage began (the last good command has not timed out)
    times, pos, quat = _frame0(windows)
    early = (times >= times[0] + 0.1) & (times <= times[0] + 0.4)
    assert np.linalg.norm(pos[early][-1, :2] - pos[early][0, :2]) > 0.05
    with operator.lock:
        status = operator.statuses[-1]
    assert status["source"] == "none" and status["refused"] >= 4 and status["standing"]


def test_stopped_publisher_times_out_to_standing(graph):
    planner, operator = graph
    v = _walk(operator, (0.0, 0.0, 0.6), 3.0)
    assert abs(v[2] - 0.6) < 0.1, v
    n_log = len(planner.lines)
    operator.command = None  # the publisher stops
    t_stop = time.monotonic()
    planner.wait_for_log("cmd_vel timed out", after=n_log, timeout=3.0)
    logged = time.monotonic() - t_stop
    assert TIMEOUT_S - 0.1 < logged < TIMEOUT_S + 0.6, logged
    time.sleep(2.5)
    windows = operator.since(t_stop)
    assert _is_standing(windows[-1])
    first_standing = next(i for i, w in enumerate(windows) if _is_standing(w))
    assert windows[first_standing].start_time - windows[0].start_time < 2.5


def test_clamped_command_and_remote_override(graph):
    planner, operator = graph
    n_log = len(planner.lines)
    v = _walk(operator, (3.0, 0.0, 0.0), 4.0)  # beyond max_vx 0.8 but not absurd: clamped
    planner.wait_for_log("/cmd_vel: vx 3 clamped to 0.8", after=n_log)
    assert abs(v[0] - 0.8) < 0.1, v
    # right stick fully right while /cmd_vel still says forward: the remote turns clockwise
    t0 = time.monotonic()
    while time.monotonic() - t0 < 3.0:
        operator.remote(rx=1.0)
        time.sleep(0.05)
    planner.wait_for_log("command source: cmd_vel -> remote", after=n_log)
    times, pos, quat = _frame0(operator.since(t0 + 1.5))
    v = averaged_velocity(times, pos, quat)[1].mean(axis=0)
    assert v[2] < -0.8 and abs(v[0]) < 0.15, v  # max_wz 1.0, the clips' turning gait
    operator.remote()  # sticks centred: /cmd_vel drives again
    planner.wait_for_log("command source: remote -> cmd_vel", after=n_log)
    operator.command = None


def test_bad_parameter_stops_the_node_with_its_reason():
    proc = subprocess.run([sys.executable, "-m", "gmt_ros.nodes.planner_node", "--ros-args", "--params-file",
                           str(REPO / "config" / "planner.yaml"), "-p", "clips:=['gmt/no_such_clip']"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "planner clips not in the library: gmt/no_such_clip" in proc.stdout + proc.stderr
