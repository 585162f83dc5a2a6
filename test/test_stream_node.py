"""gmt_stream end to end: ``python -m gmt_ros.nodes.stream_node`` in a subprocess with
config/stream.yaml, over real DDS and a real ZMQ socket on loopback; this process is the producer
(ZMQ PUB or ROS JointState) and decodes every window the node publishes.

The producer sends a motion that is linear in its own (shared) clock, so the reference every
window should start with is known in closed form: joints q0 + v (t - delay). Checked: windows
follow it after the blend-in, whatever the order frames arrive in; bad frames (NaN, unknown or
missing joints, a missing floating-base column, not JSON, a changed joint set) are refused with
a log line naming the problem and never reach a window; a producer that stops is held, then eased
to standing, with a log line for the gap, the death and the standing pose.
"""
import json
import math
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest
from node_process import REPO, NodeProcess, RosPeer, node_rig
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, String
from trajectory_msgs.msg import JointTrajectory

from gmt_ros.core import g1
from gmt_ros.core.playback import STANDING_HEIGHT
from gmt_ros.core.stream_frame import encode_frame_json, frame_columns
from gmt_ros.nodes.qos import stream_qos
from gmt_ros.nodes.window_codec import decode_window, seconds_to_time

pytestmark = pytest.mark.slow

DELAY = 0.12
SLOTS = list(g1.GMT23_SLOTS)
NAMES = frame_columns(g1.GMT23_NAMES)
SPEED = np.linspace(-0.5, 0.5, 23)  # rad/s per joint


def pose(t, t0):
    joints = g1.DEFAULT_POSE[SLOTS] + SPEED * (t - t0)
    return [0.3 * (t - t0), 0.0, 0.76, 1.0, 0.0, 0.0, 0.0] + list(joints)


def expected_joints(t, t0):
    return g1.DEFAULT_POSE[SLOTS] + SPEED * (t - t0)


class StreamProcess(NodeProcess):
    """The node under test, every topic under a unique prefix, ZMQ on a free loopback port."""

    def __init__(self, **params):
        self.prefix = f"/t{uuid.uuid4().hex[:8]}"
        self.topics = {k: f"{self.prefix}/{k}" for k in ("frame", "motion_target", "status", "timing")}
        params = {"frame_topic": self.topics["frame"], "motion_target_topic": self.topics["motion_target"],
                  "status_topic": self.topics["status"], "timing_topic": self.topics["timing"],
                  "zmq_endpoint": "tcp://127.0.0.1:*", "window_s": 0.6, "blend_in_s": 0.3, "blend_out_s": 0.5,
                  "status_rate_hz": 5.0, "log_throttle_s": 0.01, **params}
        super().__init__("gmt_ros.nodes.stream_node", "stream.yaml", params)


class Producer(RosPeer):
    """This process: records decoded windows, status and timing; sends frames over ZMQ or ROS."""

    def __init__(self, topics):
        import zmq

        super().__init__("stream_node_test")
        self.topics = topics
        self.windows = []  # (receipt time, MotionWindow)
        self.bad_windows = []
        self.timing = []
        self.node.create_subscription(JointTrajectory, topics["motion_target"], self._on_window,
                                      stream_qos(100))  # the windows are a best-effort stream (gmt_ros.nodes.qos)
        self.node.create_subscription(String, topics["status"], self._on_status, 50)
        self.node.create_subscription(Float64MultiArray, topics["timing"], lambda m: self.timing.append(list(m.data)), stream_qos(50))
        self.pub_frame = self.node.create_publisher(JointState, topics["frame"], 50)
        self.start_spinning()
        self._zmq_context = zmq.Context()
        self.zmq = None

    def _on_window(self, msg):
        try:
            window = decode_window(msg, dt=0.02)
        except ValueError as exc:
            self.bad_windows.append(str(exc))
            return
        with self.lock:
            self.windows.append((time.time(), window))

    def _on_status(self, msg):
        with self.lock:
            self.statuses.append(json.loads(msg.data))

    def wait_for_node(self, timeout=30.0) -> dict:
        status = self.wait_status(lambda s: True, timeout)
        end = time.monotonic() + timeout
        while self.node.count_subscribers(self.topics["frame"]) < 1:
            assert time.monotonic() < end, "gmt_stream never subscribed to the frame topic"
            time.sleep(0.05)
        import zmq

        self.zmq = self._zmq_context.socket(zmq.PUB)
        self.zmq.setsockopt(zmq.LINGER, 0)
        self.zmq.connect(status["zmq_endpoint"])
        time.sleep(0.5)  # the subscription reaches the PUB
        return status

    def wait_status(self, predicate, timeout=10.0) -> dict:
        return super().wait_status(predicate, timeout)

    def latest_status(self) -> dict:
        with self.lock:
            return dict(self.statuses[-1])

    def send_zmq(self, stamp, positions, seq, names=NAMES):
        self.zmq.send(encode_frame_json(stamp, names, positions, seq=seq))

    def send_ros(self, stamp, positions, names=NAMES):
        msg = JointState(name=list(names), position=[float(x) for x in positions])
        msg.header.stamp = seconds_to_time(stamp)
        self.pub_frame.publish(msg)

    def windows_between(self, t0, t1):
        with self.lock:
            return [(t, w) for t, w in self.windows if t0 <= t <= t1]

    def close(self):
        if self.zmq is not None:
            self.zmq.close()
        self._zmq_context.term()
        super().close()


@pytest.fixture
def rig():
    node = StreamProcess()
    with node_rig(node, lambda: Producer(node.topics), check_exit=True) as pair:
        yield pair


def _matching(windows, t0, tol=1e-6):
    """Fraction of windows whose frame 0 is the producer's pose of (window time - delay)."""
    ok = [np.abs(w.frames.joint_pos[0][SLOTS] - expected_joints(w.start_time - DELAY, t0)).max() < tol
          for _, w in windows]
    return sum(ok) / max(len(ok), 1)


def test_zmq_frames_reordered_and_bad_ones_refused(rig):
    node, producer = rig
    t0 = time.time()
    bad = {
        40: ("not_finite", "stream frame position of left_knee_joint is nan"),
        60: ("unknown_joint", "stream frame names unknown joints: left_toe_joint"),
        80: ("missing_floating_base", "lacks floating-base joints floating_base_qw"),
        90: ("missing_joints", "lacks joints waist_yaw_joint"),
        100: ("joint_set", "added left_wrist_roll_joint"),
    }
    held_back = None
    for k in range(150):  # 3 s at 50 Hz; every 10th frame leaves 30 ms late (after the next one)
        target = t0 + k * 0.02
        time.sleep(max(0.0, target - time.time()))
        stamp = time.time()
        if held_back is not None and k % 10 == 2:
            producer.send_zmq(*held_back)
            held_back = None
        if k % 10 == 0 and k > 20:
            held_back = (stamp, pose(stamp, t0), k)
        else:
            producer.send_zmq(stamp, pose(stamp, t0), k)
        if k in bad:
            names, values = list(NAMES), pose(stamp, t0)
            if k == 40:
                values[NAMES.index("left_knee_joint")] = math.nan
            elif k == 60:
                names, values = names + ["left_toe_joint"], values + [0.0]
            elif k == 80:
                i = names.index("floating_base_qw")
                names, values = names[:i] + names[i + 1:], values[:i] + values[i + 1:]
            elif k == 90:
                i = names.index("waist_yaw_joint")
                names, values = names[:i] + names[i + 1:], values[:i] + values[i + 1:]
            else:
                names, values = frame_columns(g1.JOINT_NAMES), values[:7] + [0.0] * 29
            producer.send_zmq(stamp + 0.001, values, 10000 + k, names=names)
        if k == 120:
            producer.zmq.send(b"{this is not json")
    time.sleep(0.3)
    status = producer.latest_status()
    assert status["state"] == "streaming", status
    for reason, words in list(bad.values()) + [("malformed", "stream message is not JSON")]:
        node.wait_for_log(f"refused stream frame ({reason}): ")
        assert words in node.log(), (reason, node.log())
    assert status["refused"] == {"not_finite": 1, "unknown_joint": 1, "missing_floating_base": 1,
                                 "missing_joints": 1, "joint_set": 1, "malformed": 1}, status
    # Every good frame is used; one held back 30 ms may also fall behind the playback point when this
    # process stalls while holding it (a stall of delay_s), and is then dropped as late, by design.
    counts = status["counts"]
    assert counts["reordered"] >= 10 and counts["accepted"] + counts.get("late", 0) == 150, status
    assert counts.get("late", 0) <= 2 and counts.get("duplicate", 0) == 0, status
    assert "used in stamp order" in node.log()
    assert not producer.bad_windows  # nothing refused ever reached a window
    streaming = producer.windows_between(t0 + 0.3 + DELAY + 0.1, t0 + 2.9)
    assert len(streaming) > 80
    assert _matching(streaming, t0) > 0.9, node.log()
    # frame-in timing: every accepted frame's arrival, once, after its stamp
    arrivals = [a for row in producer.timing for a in row[2:]]
    assert len(arrivals) == 150 and all(t0 <= a <= row[1] for row in producer.timing for a in row[2:])
    assert all(row[1] - row[0] == pytest.approx(0.1, abs=1e-6) for row in producer.timing)  # history_s


def test_ros_frames_then_a_dead_producer_is_held_and_eased_to_standing(rig):
    node, producer = rig
    t0 = time.time()
    for k in range(100):  # 2 s at 50 Hz over the ROS topic
        time.sleep(max(0.0, t0 + k * 0.02 - time.time()))
        stamp = time.time()
        producer.send_ros(stamp, pose(stamp, t0))
    last = time.time()
    producer.wait_status(lambda s: s["state"] == "idle" and s["counts"].get("accepted", 0) == 100, timeout=5.0)
    node.wait_for_log("standing; waiting for a producer")
    log = node.log()
    assert log.index("stream started") < log.index("stream gap: no frame for") < log.index("producer dead: no stream "
                                                                                            "frame for") < log.index("standing; waiting")
    streaming = producer.windows_between(t0 + 0.3 + DELAY + 0.1, last)
    assert _matching(streaming, t0) > 0.9, log
    status = producer.latest_status()
    assert status["latency_ms"]["p50"] >= 0 and status["counts"]["accepted"] == 100  # stamped before sent
    after = producer.windows_between(last, time.time())
    q0 = np.array([w.frames.joint_pos[0] for _, w in after])
    assert np.abs(np.diff(q0, axis=0)).max() < 0.1  # hold, then ease: no jump
    # held: the same pose for a while (prediction ends predict_s past the newest frame) ...
    same = np.all(np.abs(np.diff(q0, axis=0)) < 1e-9, axis=1)
    run = max(len(r) for r in "".join("1" if s else "0" for s in same).split("0"))
    assert run >= 5
    # ... then standing
    end = after[-1][1]
    np.testing.assert_allclose(end.frames.joint_pos[0], g1.DEFAULT_POSE, atol=1e-9)
    assert end.frames.root_pos[0, 2] == pytest.approx(STANDING_HEIGHT) and end.joint_mask.all()


@pytest.mark.parametrize("transport", ["zmq", "ros"])
def test_the_documented_minimal_producers_drive_the_stream(rig, transport):
    node, producer = rig
    endpoint = producer.latest_status()["zmq_endpoint"]
    script = REPO / "docs" / "examples" / f"stream_wave_{transport}.py"
    where = ["--endpoint", endpoint] if transport == "zmq" else ["--topic", node.topics["frame"]]
    started = time.time()
    subprocess.run([sys.executable, str(script), *where, "--seconds", "2.5"], check=True, timeout=60)
    status = producer.wait_status(lambda s: s["counts"].get("accepted", 0) >= 50, timeout=5.0)
    assert not status["refused"] and status["joints"] in (23, None), status
    shoulder = g1.SLOT_OF["right_shoulder_roll_joint"]
    waved = [w.frames.joint_pos[0, shoulder] for _, w in producer.windows_between(started, time.time())]
    assert min(waved) < -0.5 and max(waved) > -0.45  # standing at -0.4, the wave goes to -1.0


def test_the_documented_producers_are_the_example_files():
    doc = (REPO / "docs" / "STREAMING.md").read_text()
    for name in ("stream_wave_zmq.py", "stream_wave_ros.py"):
        assert (REPO / "docs" / "examples" / name).read_text().strip() in doc, name
