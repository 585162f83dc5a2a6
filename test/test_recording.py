"""Recording to MCAP and replaying through the policy.

- Schemas: real ROS messages (JointState, Imu, JointTrajectory, DiagnosticArray, String) serialized
  by rclpy, written with the ros2msg definitions built from the installed .msg files, decoded back
  by mcap_ros2 (an independent decoder) field for field; a file whose recorder was killed (no
  summary) still reads up to its last flush.
- Live: the recorder node as a subprocess on a ROS domain of its own; this process publishes
  state, IMU, motion windows from a shipped clip, joint targets computed by a real TrackingPolicy,
  timing, diagnostics, a best-effort topic and a latched topic published before the recorder
  started; after SIGINT every message is in the file with its content, nothing from the excluded
  topic. Replay of that file reproduces the joint targets (to 1e-6 rad) with the policy reset
  where the recorded timing says the node reset.
- CLI: `gmt-ros record` with --topics stops on SIGTERM with a complete file; bad input exits 2
  with one line naming the problem.
"""
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import rclpy
import yaml
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from mcap.reader import make_reader
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.serialization import serialize_message
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Float32MultiArray, String, UInt8MultiArray
from trajectory_msgs.msg import JointTrajectory

from gmt_ros import cli
from gmt_ros.adapters import mcap_io
from gmt_ros.core import g1, rotations
from gmt_ros.core.clip_library import resolve_clip
from gmt_ros.core.contract import load_contract
from gmt_ros.core.motion import load_clip, window_from_clip
from gmt_ros.core.policy import TrackingPolicy
from gmt_ros.core.state import RobotState
from gmt_ros.nodes.window_codec import decode_window, encode_window, seconds_to_time, time_to_seconds
from gmt_ros.tools.recording import replay

REPO = Path(__file__).resolve().parents[1]
# A ROS domain of this module's own: the recorder records every topic it sees, so other test
# modules' nodes (domain 87) must not be seen.
DOMAIN = 100 + os.getpid() % 100
CHILD_ENV = {**os.environ, "ROS_DOMAIN_ID": str(DOMAIN), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def _clip(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_clip(resolve_clip(name))


def _joint_state(seed: int, names=None) -> JointState:
    rng = np.random.default_rng(seed)
    names = list(names or g1.JOINT_NAMES)
    msg = JointState(name=names, position=(g1.DEFAULT_POSE[g1.slots_of(names)] + rng.normal(0, 0.05, len(names))).tolist(),
                     velocity=rng.normal(0, 0.3, len(names)).tolist(), effort=rng.normal(0, 2.0, len(names)).tolist())
    msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id = 1000 + seed, 250_000_000, "pelvis"
    return msg


def _imu(seed: int) -> Imu:
    rng = np.random.default_rng(100 + seed)
    w, x, y, z = rotations.from_rpy(rng.normal(0, 0.05, 3))
    msg = Imu()
    msg.orientation.x, msg.orientation.y, msg.orientation.z, msg.orientation.w = x, y, z, w
    msg.angular_velocity.x, msg.angular_velocity.y, msg.angular_velocity.z = rng.normal(0, 0.2, 3)
    msg.linear_acceleration.x, msg.linear_acceleration.y, msg.linear_acceleration.z = rng.normal(0, 0.2, 3) + [0, 0, 9.81]
    msg.orientation_covariance[0] = -1.0
    return msg


def _window_msg(start_time: float, clip_time: float = 1.0, n: int = 50) -> JointTrajectory:
    return encode_window(window_from_clip(_clip("twist2/walk_001"), clip_time=clip_time, start_time=start_time, n=n))


def _diagnostics(k: int) -> DiagnosticArray:
    status = DiagnosticStatus(level=DiagnosticStatus.WARN, name=f"gmt_policy: check {k}", message="publishing nothing",
                              hardware_id="gmt_ros", values=[KeyValue(key="ticks", value=str(k)), KeyValue(key="x", value="1.5")])
    return DiagnosticArray(status=[status])


# ----------------------------------------------------------------------------- definitions, writer, reader

def test_definition_text_is_the_msg_files_with_each_dependency_once():
    text = mcap_io.message_definition("trajectory_msgs/JointTrajectory")
    own = mcap_io.find_definition_file("trajectory_msgs/msg/JointTrajectory").read_text()
    assert text.startswith(own.rstrip("\n") + "\n" + "=" * 80 + "\n")
    deps = [line[5:] for line in text.splitlines() if line.startswith("MSG: ")]
    assert deps == ["std_msgs/msg/Header", "builtin_interfaces/msg/Time", "trajectory_msgs/msg/JointTrajectoryPoint",
                    "builtin_interfaces/msg/Duration"]
    assert text.count("=" * 80) == 4
    # same-package types without a package, arrays, bounded strings, constants and comments
    msg = ("# a comment naming Foo\nHeader header  # field comment\nDiagnosticStatus[] status\nuint8 OK=0\n"
           "string<=8 short\ngeometry_msgs/Point[3] corners\nbuiltin_interfaces/msg/Time[<=4] times\nfloat64[] x\n")
    assert mcap_io.field_types(msg, "diagnostic_msgs") == [
        "diagnostic_msgs/msg/Header", "diagnostic_msgs/msg/DiagnosticStatus", "geometry_msgs/msg/Point",
        "builtin_interfaces/msg/Time"]


def test_definition_errors_name_the_problem(tmp_path):
    with pytest.raises(mcap_io.RecordingError, match="'JointState' is not a ROS message type name"):
        mcap_io.message_definition("JointState")
    with pytest.raises(mcap_io.RecordingError, match=r"no Nope\.msg for nope_msgs/msg/Nope .*is the nope_msgs package installed"):
        mcap_io.message_definition("nope_msgs/msg/Nope")
    (tmp_path / "taken.mcap").write_bytes(b"x")
    with pytest.raises(mcap_io.RecordingError, match="already exists"):
        mcap_io.McapRecording(tmp_path / "taken.mcap")
    with pytest.raises(mcap_io.RecordingError, match=r"must end in \.mcap"):
        mcap_io.McapRecording(tmp_path / "run.bag")
    with pytest.raises(mcap_io.RecordingError, match="does not exist"):
        mcap_io.McapRecording(tmp_path / "no" / "run.mcap")
    with pytest.raises(mcap_io.RecordingError, match="not found"):
        list(mcap_io.read_messages(tmp_path / "missing.mcap"))


def test_real_messages_round_trip_through_mcap_ros2(tmp_path):
    path = tmp_path / "types.mcap"
    window = _window_msg(start_time=1234.5)
    originals = {
        "/joint_states": ("sensor_msgs/msg/JointState", _joint_state(3)),
        "/imu": ("sensor_msgs/msg/Imu", _imu(3)),
        "/gmt/motion_target": ("trajectory_msgs/msg/JointTrajectory", window),
        "/diagnostics": ("diagnostic_msgs/msg/DiagnosticArray", _diagnostics(7)),
        "/gmt/player/status": ("std_msgs/msg/String", String(data='{"state": "playing", "clip": "walk_001"}')),
    }
    qos = mcap_io.offered_qos_yaml([{"history": 1, "depth": 10, "reliability": 1, "durability": 1, "liveliness": 1,
                                     "deadline": (0, 0), "lifespan": (9223372036, 854775807),
                                     "liveliness_lease_duration": (0, 0)}])
    rec = mcap_io.McapRecording(path)
    for i, (topic, (type_name, msg)) in enumerate(originals.items()):
        channel = rec.add_topic(topic, type_name, qos)
        rec.write(channel, serialize_message(msg), log_time_ns=2_000 + i, publish_time_ns=1_000 + i, sequence=i)
    rec.close()
    rec.close()  # idempotent

    with open(path, "rb") as f:
        reader = make_reader(f)
        assert reader.get_header().profile == "ros2"
        summary = reader.get_summary()
        assert {s.name: s.encoding for s in summary.schemas.values()} == {t: "ros2msg" for t, _ in originals.values()}
        for ch in summary.channels.values():
            assert ch.message_encoding == "cdr"
            parsed = yaml.safe_load(ch.metadata["offered_qos_profiles"])
            assert parsed[0]["reliability"] == 1 and parsed[0]["durability"] == 1 and parsed[0]["depth"] == 10
            assert parsed[0]["lifespan"] == {"sec": 9223372036, "nsec": 854775807}

    decoded = {r.topic: r for r in mcap_io.read_messages(path)}
    assert set(decoded) == set(originals)
    assert [decoded[t].publish_time_ns for t in originals] == [1000, 1001, 1002, 1003, 1004]
    assert [decoded[t].log_time_ns for t in originals] == [2000, 2001, 2002, 2003, 2004]

    js, js0 = decoded["/joint_states"].message, originals["/joint_states"][1]
    assert list(js.name) == list(js0.name) and js.header.frame_id == "pelvis"
    assert (js.header.stamp.sec, js.header.stamp.nanosec) == (1003, 250_000_000)
    for field in ("position", "velocity", "effort"):
        assert list(getattr(js, field)) == list(getattr(js0, field))  # float64: bit-exact

    imu, imu0 = decoded["/imu"].message, originals["/imu"][1]
    for part in ("orientation", "angular_velocity", "linear_acceleration"):
        for axis in ("x", "y", "z"):
            assert getattr(getattr(imu, part), axis) == getattr(getattr(imu0, part), axis)
    assert imu.orientation.w == imu0.orientation.w
    assert list(imu.orientation_covariance) == list(imu0.orientation_covariance)

    traj = decoded["/gmt/motion_target"].message
    assert list(traj.joint_names) == list(window.joint_names) and len(traj.points) == 50
    assert traj.header.frame_id == "world"
    for p, p0 in zip(traj.points, window.points, strict=True):
        assert list(p.positions) == list(p0.positions) and list(p.velocities) == list(p0.velocities)
        assert (p.time_from_start.sec, p.time_from_start.nanosec) == (p0.time_from_start.sec, p0.time_from_start.nanosec)
    # the window codec reads the decoded message as it reads the ROS one
    a, b = decode_window(traj), decode_window(window)
    assert a.start_time == b.start_time and np.array_equal(a.frames.joint_pos, b.frames.joint_pos)

    diag = decoded["/diagnostics"].message.status[0]
    assert diag.level == 1 and diag.name == "gmt_policy: check 7" and diag.hardware_id == "gmt_ros"
    assert [(kv.key, kv.value) for kv in diag.values] == [("ticks", "7"), ("x", "1.5")]
    assert decoded["/gmt/player/status"].message.data == '{"state": "playing", "clip": "walk_001"}'

    info = mcap_io.recording_info(path)
    assert info.complete and info.topics["/imu"] == ("sensor_msgs/msg/Imu", 1)
    assert (info.start_ns, info.end_ns) == (2000, 2004)


def test_file_of_a_killed_recorder_reads_up_to_its_last_flush(tmp_path):
    path = tmp_path / "killed.mcap"
    rec = mcap_io.McapRecording(path)
    channel = rec.add_topic("/chatter", "std_msgs/msg/String")
    for i in range(30):
        rec.write(channel, serialize_message(String(data=f"m{i}")), 10 + i, 10 + i)
    rec.flush()
    rec.write(channel, serialize_message(String(data="after the flush")), 100, 100)
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(path.read_bytes())  # what is on disk when the process dies now
    rec.close()

    info = mcap_io.recording_info(cut)
    assert not info.complete and info.topics == {"/chatter": ("std_msgs/msg/String", 30)}
    assert [r.message.data for r in mcap_io.read_messages(cut)] == [f"m{i}" for i in range(30)]
    assert mcap_io.recording_info(path).topics["/chatter"][1] == 31


# ----------------------------------------------------------------------------- live recording and replay

class Publisher:
    """This process's side on the module's ROS domain."""

    def __init__(self):
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=DOMAIN)
        self.node = rclpy.create_node(f"recording_test_{os.getpid()}", context=self.context)
        n = self.node
        self.pubs = {
            "/gmt/supervisor/state": n.create_publisher(String, "/gmt/supervisor/state", LATCHED),
            "/joint_states": n.create_publisher(JointState, "/joint_states", 10),
            "/imu": n.create_publisher(Imu, "/imu", 10),
            "/gmt/motion_target": n.create_publisher(JointTrajectory, "/gmt/motion_target", 10),
            "/gmt/joint_targets": n.create_publisher(JointState, "/gmt/joint_targets", 10),
            "/gmt/policy/timing": n.create_publisher(Float32MultiArray, "/gmt/policy/timing", 10),
            "/diagnostics": n.create_publisher(DiagnosticArray, "/diagnostics", 10),
            "/wireless_remote": n.create_publisher(UInt8MultiArray, "/wireless_remote", qos_profile_sensor_data),
            "/excluded/chatter": n.create_publisher(String, "/excluded/chatter", 10),
        }
        self.sent: dict[str, list] = {t: [] for t in self.pubs}

    def publish(self, topic, msg):
        self.pubs[topic].publish(msg)
        self.sent[topic].append(msg)

    def wait_recorded(self, topics, timeout=20.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if all(any(i.node_name == "gmt_recorder_intake" for i in self.node.get_subscriptions_info_by_topic(t))
                   for t in topics):
                time.sleep(0.3)  # both ends matched
                return
            time.sleep(0.05)
        raise AssertionError(f"the recorder did not subscribe {topics}")

    def close(self):
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def _start_recorder(out: Path, *params: str):
    args = [sys.executable, "-m", "gmt_ros.nodes.recorder_node", "--ros-args", "-p", f"output:={out}",
            "-p", "discovery_period_s:=0.2"]
    for p in params:
        args += ["-p", p]
    return subprocess.Popen(args, cwd=REPO, env=CHILD_ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _stop(proc, sig=signal.SIGINT, timeout=15.0) -> tuple[int, str]:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return proc.returncode, out


TICKS = 40
SKIPPED_TICK = 22  # the node published nothing at this tick (e.g. stale state) and resets after it


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A recording made by the recorder subprocess, with what this process sent and the joint
    targets a TrackingPolicy computed from exactly the state and windows sent before each tick."""
    out = tmp_path_factory.mktemp("live") / "live.mcap"
    pub = Publisher()
    pub.publish("/gmt/supervisor/state", String(data='{"mode": "hold"}'))  # before the recorder exists
    proc = _start_recorder(out, "exclude_regex:=^/excluded")
    try:
        pub.wait_recorded([t for t in pub.pubs if t != "/excluded/chatter"])
        contract = load_contract("twist2_student")
        policy = TrackingPolicy(contract)
        horizon = max(contract.future_offsets) * contract.control_dt
        shuffled = list(np.random.default_rng(0).permutation(g1.JOINT_NAMES))  # the policy maps by name
        expected = []  # (tick time, policy joint targets)
        window = None
        pub.publish("/gmt/policy/timing", Float32MultiArray(data=[20.0, float("nan"), 0.0]))  # before the first window
        for k in range(TICKS):
            js, imu = _joint_state(k, shuffled), _imu(k)
            pub.publish("/joint_states", js)
            pub.publish("/imu", imu)
            if k % 8 == 0:
                msg = _window_msg(start_time=time.time(), clip_time=1.0 + 0.02 * k)
                pub.publish("/gmt/motion_target", msg)
                window = decode_window(msg, dt=contract.control_dt, min_horizon_s=horizon)
            if k % 10 == 0:
                pub.publish("/diagnostics", _diagnostics(k))
                pub.publish("/wireless_remote", UInt8MultiArray(data=bytes([k] * 40)))
                pub.publish("/excluded/chatter", String(data=f"not for the file {k}"))
            time.sleep(0.002)
            # the tick time as its stamp carries it (the node's float clock reading rounds to whole
            # ns in the stamp, ~1e-7 s at today's epoch, which alone moves the targets by ~1e-6 rad)
            now = time_to_seconds(seconds_to_time(time.time()))
            if k == SKIPPED_TICK:
                pub.publish("/gmt/policy/timing", Float32MultiArray(data=[20.0, float("nan"), 0.0]))
                policy.reset()  # the node resets on its next published tick
            else:
                index = {n: i for i, n in enumerate(js.name)}
                cols = [index[n] for n in g1.JOINT_NAMES]
                w, x, y, z = (imu.orientation.w, imu.orientation.x, imu.orientation.y, imu.orientation.z)
                state = RobotState(stamp=now, joint_pos=np.array(js.position)[cols], joint_vel=np.array(js.velocity)[cols],
                                   imu_quat=np.array([w, x, y, z]),
                                   imu_gyro=np.array([imu.angular_velocity.x, imu.angular_velocity.y, imu.angular_velocity.z]),
                                   imu_acc=np.array([imu.linear_acceleration.x, imu.linear_acceleration.y,
                                                     imu.linear_acceleration.z]),
                                   joint_tau=np.array(js.effort)[cols])
                q = policy.step(state, window, now).q[contract.slots]
                target = JointState(name=list(contract.joint_names), position=q.tolist(),
                                    velocity=[0.0] * len(q), effort=[0.0] * len(q))
                target.header.stamp = seconds_to_time(now)
                pub.publish("/gmt/joint_targets", target)
                pub.publish("/gmt/policy/timing", Float32MultiArray(data=[20.0, 0.3, 1.0]))
                expected.append((now, q))
            time.sleep(0.003)
        time.sleep(0.3)
        code, log = _stop(proc)
        yield {"path": out, "sent": pub.sent, "expected": expected, "code": code, "log": log, "contract": contract}
    finally:
        if proc.poll() is None:
            _stop(proc)
        pub.close()


def test_recorder_writes_every_message_with_its_content(live):
    assert live["code"] == 0, live["log"]
    sent, path = live["sent"], live["path"]
    info = mcap_io.recording_info(path)
    assert info.complete, "no summary: the recorder did not close the file"
    assert "/excluded/chatter" not in info.topics
    for topic, msgs in sent.items():
        if topic != "/excluded/chatter":
            assert info.topics[topic][1] == len(msgs), f"{topic}: {info.topics[topic][1]} recorded, {len(msgs)} sent"
    assert info.topics["/joint_states"][0] == "sensor_msgs/msg/JointState"
    assert info.topics["/gmt/motion_target"][0] == "trajectory_msgs/msg/JointTrajectory"
    assert info.metadata["gmt_ros.recorder"]["exclude_regex"] == "^/excluded"

    got: dict[str, list] = {}
    for rec in mcap_io.read_messages(path):
        got.setdefault(rec.topic, []).append(rec)
    assert got["/gmt/supervisor/state"][0].message.data == '{"mode": "hold"}'  # latched, sent before the recorder
    for a, b in zip(got["/joint_states"], sent["/joint_states"], strict=True):
        assert list(a.message.name) == list(b.name) and list(a.message.position) == list(b.position)
        assert list(a.message.effort) == list(b.effort)
        assert 0 < a.publish_time_ns <= a.log_time_ns < a.publish_time_ns + 1_000_000_000
    for a, b in zip(got["/imu"], sent["/imu"], strict=True):
        assert (a.message.orientation.w, a.message.angular_velocity.z) == (b.orientation.w, b.angular_velocity.z)
    for a, b in zip(got["/gmt/motion_target"], sent["/gmt/motion_target"], strict=True):
        assert [list(p.positions) for p in a.message.points] == [list(p.positions) for p in b.points]
    for a, b in zip(got["/gmt/joint_targets"], sent["/gmt/joint_targets"], strict=True):
        assert list(a.message.position) == list(b.position)
        assert (a.message.header.stamp.sec, a.message.header.stamp.nanosec) == (b.header.stamp.sec, b.header.stamp.nanosec)
    assert [bytes(r.message.data) for r in got["/wireless_remote"]] == [bytes(m.data) for m in sent["/wireless_remote"]]
    assert [r.message.status[0].name for r in got["/diagnostics"]] == [m.status[0].name for m in sent["/diagnostics"]]
    timing = [list(r.message.data) for r in got["/gmt/policy/timing"]]
    assert sum(t[2] == 0.0 for t in timing) == 2 and sum(t[2] == 1.0 for t in timing) == TICKS - 1
    # the publish times keep the order in which this process sent them, across topics
    order = sorted((r.publish_time_ns, r.topic) for t in ("/joint_states", "/gmt/joint_targets") for r in got[t])
    assert [t for _, t in order[:3]] == ["/joint_states", "/gmt/joint_targets", "/joint_states"]


def test_replay_reproduces_the_joint_targets(live, tmp_path):
    report = replay(live["path"], policy="twist2_student")
    expected = live["expected"]
    assert report.ticks_recorded == TICKS - 1 == len(expected)
    assert report.ticks_compared == TICKS - 1 and not report.ticks_not_replayable
    assert report.windows_accepted == len(live["sent"]["/gmt/motion_target"]) and not report.windows_refused
    assert [r["ticks"] for r in report.runs] == [SKIPPED_TICK, TICKS - 1 - SKIPPED_TICK]
    assert [r["start_recorded"] for r in report.runs] == [True, True]
    d = report.as_dict()
    assert d["max_abs_diff_rad"] < 1e-9, d["worst"]  # same inputs, same tick times: the same network output
    assert set(d["per_joint"]) == set(live["contract"].joint_names)

    # The match is not trivial: the targets move by far more than the tolerance from tick to tick,
    # and not resetting the policy after the skipped tick (keeping its history) changes them.
    q = np.array([q for _, q in expected])
    assert np.abs(np.diff(q, axis=0)).max() > 1e-2
    contract = live["contract"]
    policy = TrackingPolicy(contract)
    replay_no_reset = []
    window = None
    sent = live["sent"]
    windows = iter(sent["/gmt/motion_target"])
    for k in range(TICKS):
        if k % 8 == 0:
            window = decode_window(next(windows), dt=contract.control_dt)
        if k == SKIPPED_TICK:
            continue
        i = k if k < SKIPPED_TICK else k - 1
        js, imu = sent["/joint_states"][k], sent["/imu"][k]
        index = {n: j for j, n in enumerate(js.name)}
        cols = [index[n] for n in g1.JOINT_NAMES]
        state = RobotState(stamp=0.0, joint_pos=np.array(js.position)[cols], joint_vel=np.array(js.velocity)[cols],
                           imu_quat=np.array([imu.orientation.w, imu.orientation.x, imu.orientation.y, imu.orientation.z]),
                           imu_gyro=np.array([imu.angular_velocity.x, imu.angular_velocity.y, imu.angular_velocity.z]),
                           imu_acc=np.array([imu.linear_acceleration.x, imu.linear_acceleration.y, imu.linear_acceleration.z]),
                           joint_tau=np.array(js.effort)[cols])
        replay_no_reset.append(policy.step(state, window, expected[i][0]).q[contract.slots])
    no_reset = np.abs(np.array(replay_no_reset) - q)
    assert no_reset[:SKIPPED_TICK].max() < 1e-6  # same as recorded until the skipped tick
    assert no_reset[SKIPPED_TICK].max() > 1e-3   # then the kept history shows

    # the CLI prints the table and writes the same report
    out, trace = tmp_path / "replay.json", tmp_path / "trace.csv"
    assert cli.main(["replay", str(live["path"]), "--json", str(out), "--trace", str(trace)]) == 0
    assert json.loads(out.read_text())["ticks_compared"] == TICKS - 1
    rows = trace.read_text().splitlines()
    assert rows[0] == "t_s,run,tick_in_run,max_abs_rad,joint,state_age_ms,window_age_ms" and len(rows) == TICKS
    assert [r.split(",")[1:3] for r in rows[SKIPPED_TICK:SKIPPED_TICK + 2]] == [["0", str(SKIPPED_TICK - 1)], ["1", "0"]]
    assert all(0 < float(r.split(",")[5]) < 1000 for r in rows[1:])  # the state was sent before each tick


def test_replay_refuses_what_it_cannot_compare(live, tmp_path, capsys):
    assert cli.main(["replay", str(tmp_path / "none.mcap")]) == 2
    assert "none.mcap not found" in capsys.readouterr().err
    # a recording without the policy's output
    path = tmp_path / "no_targets.mcap"
    rec = mcap_io.McapRecording(path)
    channel = rec.add_topic("/joint_states", "sensor_msgs/msg/JointState")
    rec.write(channel, serialize_message(_joint_state(0)), 1, 1)
    rec.close()
    assert cli.main(["replay", str(path)]) == 2
    assert "has no /gmt/joint_targets messages" in capsys.readouterr().err
    # the policy that did not run (GMT ships no ONNX here: refused before reading)
    assert cli.main(["replay", str(live["path"]), "--policy", "gmt_student"]) == 2
    assert "gmt_student" in capsys.readouterr().err
    assert cli.main(["replay", str(live["path"]), "--window-max-age", "0"]) == 2
    assert "--window-max-age must be positive" in capsys.readouterr().err


def test_record_cli_records_the_listed_topics_and_stops_on_sigterm(tmp_path):
    """Also: a best-effort publisher joining a topic recorded as reliable is heard (the recorder
    subscribes again with best effort)."""
    out = tmp_path / "cli.mcap"
    topic = "/gmt/player/status"
    pub = Publisher()
    proc = subprocess.Popen([sys.executable, "-m", "gmt_ros.cli", "record", "--out", str(out),
                             "--topics", topic, "/never/published"],
                            cwd=REPO, env=CHILD_ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def wait_subscribed(reliability):
        end = time.monotonic() + 20
        while not any(i.node_name == "gmt_recorder_intake" and i.qos_profile.reliability == reliability
                      for i in pub.node.get_subscriptions_info_by_topic(topic)):
            assert time.monotonic() < end and proc.poll() is None, f"the recorder did not subscribe {reliability.name}"
            time.sleep(0.05)
        time.sleep(0.3)

    try:
        reliable = pub.node.create_publisher(String, topic, 10)
        wait_subscribed(ReliabilityPolicy.RELIABLE)
        for i in range(7):
            reliable.publish(String(data=f"status {i}"))
            pub.publish("/joint_states", _joint_state(i))  # not listed: not recorded
            time.sleep(0.01)
        best_effort = pub.node.create_publisher(String, topic, qos_profile_sensor_data)
        wait_subscribed(ReliabilityPolicy.BEST_EFFORT)
        for i in range(3):
            best_effort.publish(String(data=f"best effort {i}"))
            reliable.publish(String(data=f"reliable {i}"))
            time.sleep(0.01)
        time.sleep(0.3)
        code, log = _stop(proc, signal.SIGTERM)
    finally:
        if proc.poll() is None:
            _stop(proc, signal.SIGKILL)
        pub.close()
    assert code == 0, log
    assert "13 messages on 1 topics" in log
    assert "requested topics never published: /never/published" in log
    info = mcap_io.recording_info(out)
    assert info.complete and info.topics == {topic: ("std_msgs/msg/String", 13)}
    data = [r.message.data for r in mcap_io.read_messages(out)]
    assert data[:7] == [f"status {i}" for i in range(7)]
    assert sorted(data[7:]) == sorted([f"best effort {i}" for i in range(3)] + [f"reliable {i}" for i in range(3)])


def test_record_cli_bad_input(tmp_path, capsys):
    assert cli.main(["record", "--out", str(tmp_path / "x.mcap"), "--seconds", "-1"]) == 2
    assert "--seconds must be positive, got -1.0" in capsys.readouterr().err
    taken = tmp_path / "taken.mcap"
    taken.write_bytes(b"")
    assert cli.main(["record", "--out", str(taken), "--seconds", "0.1"]) == 2
    assert "taken.mcap already exists" in capsys.readouterr().err
    assert cli.main(["record", "--out", str(tmp_path / "x.mcap"), "--topics", "joint_states", "--seconds", "0.1"]) == 2
    assert "'joint_states' is not a full topic name" in capsys.readouterr().err
    assert cli.main(["record", "--out", str(tmp_path / "y.mcap"), "--regex", "(", "--seconds", "0.1"]) == 2
    assert "topic_regex: '(' is not a regular expression" in capsys.readouterr().err
    assert not (tmp_path / "x.mcap").exists() and not (tmp_path / "y.mcap").exists()
