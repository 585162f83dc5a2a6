"""The bridge node end to end: a real subprocess, real DDS on loopback, real rclpy.

This test process plays the robot with the Unitree SDK's own types (LowState_ with the SDK's CRC
out, LowCmd_ in) and the policy with rclpy (JointState targets). The bridge runs as
``python -m gmt_ros.nodes.bridge_node`` with config/bridge.yaml and overrides.
"""
import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOMAIN = int(os.environ["GMT_ROS_DDS_DOMAIN"])
INTERFACE = os.environ["GMT_ROS_DDS_INTERFACE"]
assert INTERFACE == "lo" and DOMAIN != 0, "bridge tests run only on loopback in a non-zero domain"

CONTRACT = REPO / "models" / "gmt_student" / "contract.yaml"  # 23 policy joints + 6 held wrists
TIMEOUTS = {"target_timeout_s": 0.1, "stale_hold_s": 0.4, "state_timeout_s": 0.25}
ROBOT_RATE_HZ = 100.0  # the SDK's pure-Python codec costs ~1 ms per state; 100 Hz keeps CPU low


@functools.lru_cache(maxsize=1)
def contract_gains():
    """kp/kd/target by joint name, read from the YAML directly (independent of the loaders)."""
    data = yaml.safe_load(CONTRACT.read_text())
    gains = {n: (kp, kd) for n, kp, kd in zip(data["joint_names"], data["kp"], data["kd"])}
    held = {n: (h["target"], h["kp"], h["kd"]) for n, h in data["held_joints"].items()}
    return data["joint_names"], gains, held


# ------------------------------------------------------------------------------------ core logic


def test_command_source_decides_by_age():
    from gmt_ros.core.command import JointCommand
    from gmt_ros.core.command_source import BridgeMode, CommandSource, Timeouts

    source = CommandSource(Timeouts(target_timeout_s=0.1, stale_hold_s=0.4, state_timeout_s=0.25))
    target = JointCommand.damping(kd=1.0)
    target.kp[:] = 50.0
    cases = [  # (now, state received, target computed, expected mode)
        (10.0, None, None, BridgeMode.NO_STATE),
        (10.0, None, 9.99, BridgeMode.NO_STATE),
        (10.0, 9.99, None, BridgeMode.DAMPING_NO_TARGET),
        (10.0, 9.99, 9.95, BridgeMode.TRACKING),
        (10.0, 9.99, 9.90, BridgeMode.TRACKING),  # exactly target_timeout_s old
        (10.0, 9.99, 9.85, BridgeMode.HOLDING_STALE_TARGET),
        (10.0, 9.99, 9.51, BridgeMode.HOLDING_STALE_TARGET),
        (10.0, 9.99, 9.49, BridgeMode.DAMPING_STALE_TARGET),
        (10.0, 9.70, 9.99, BridgeMode.DAMPING_STALE_STATE),  # fresh target, stale state
    ]
    for now, state_t, target_t, mode in cases:
        d = source.decide(now, state_t, target if target_t is not None else None, target_t)
        assert d.mode == mode, (now, state_t, target_t, d)
        if mode == BridgeMode.NO_STATE:
            assert d.command is None
        elif mode in (BridgeMode.TRACKING, BridgeMode.HOLDING_STALE_TARGET):
            assert d.command is target
        else:
            assert np.all(d.command.kp == 0) and np.all(d.command.kd == 8.0)
    stale = source.decide(10.0, 9.70, None, None)
    assert "robot state is 0.300 s old (> state_timeout_s 0.250)" in stale.reason
    with pytest.raises(ValueError, match="state_timeout_s must be a positive number"):
        Timeouts(0.1, 0.4, 0.0)
    with pytest.raises(ValueError, match="stale_hold_s must be >= 0"):
        Timeouts(0.1, -1.0, 0.1)


def test_target_mapper_maps_by_name_and_names_bad_targets():
    from gmt_ros.core import g1
    from gmt_ros.core.command_source import PolicyGains, TargetMapper, gains_from_contract
    from gmt_ros.core.contract import load_contract

    names, gains, held = contract_gains()
    mapper = TargetMapper(gains_from_contract(load_contract(CONTRACT)))
    target = target_for()
    cmd = mapper.command(target[0], target[1], target[2], target[3])
    arr = np.array([np.ones(29), cmd.q, cmd.dq, cmd.tau, cmd.kp, cmd.kd])
    assert_tracks(arr, target)
    no_vel = mapper.command(target[0], target[1], [], [])  # velocity/effort are optional
    assert np.all(no_vel.dq == 0) and np.all(no_vel.tau == 0)
    with pytest.raises(ValueError, match=r"not policy joints \['left_wrist_roll_joint'\], missing \['waist_yaw_joint'\]"):
        mapper.command([n if n != "waist_yaw_joint" else "left_wrist_roll_joint" for n in names], np.zeros(23))
    with pytest.raises(ValueError, match="target position has 22 values for 23 joint names"):
        mapper.command(names, np.zeros(22))
    with pytest.raises(ValueError, match="target velocity contains NaN"):
        mapper.command(names, np.zeros(23), np.full(23, np.nan))
    with pytest.raises(ValueError, match="target names repeat a joint"):
        mapper.command(names[:-1] + names[:1], np.zeros(23))
    with pytest.raises(ValueError, match=r"neither driven by the policy nor held: \['left_wrist_roll_joint'"):
        PolicyGains(joint_names=g1.GMT23_NAMES, kp=np.ones(23), kd=np.ones(23))
    with pytest.raises(ValueError, match="kd is negative for left_knee_joint"):
        PolicyGains(joint_names=g1.JOINT_NAMES, kp=np.ones(29), kd=-(np.arange(29) == 3).astype(float))


# ------------------------------------------------------------------------------------ robot side


class Robot:
    """Publishes the SDK's LowState_ on rt/lowstate at ROBOT_RATE_HZ while ``publishing``; records
    every rt/lowcmd as (receipt time, mode_machine, SDK CRC ok, [mode,q,dq,tau,kp,kd] x 35).

    rt/lowcmd is read with FastLowCmd_: the SDK's pure-Python decoder (~0.5 ms a message) cannot
    keep up with 500 Hz here and its one-deep reader queue would drop samples. That FastLowCmd_
    decodes exactly like the SDK is checked in test_lowlevel."""

    def __init__(self):
        from unitree_sdk2py.core.channel import ChannelPublisher, ChannelSubscriber
        from unitree_sdk2py.idl.unitree_hg.msg.dds_ import LowState_
        from unitree_sdk2py.utils.crc import CRC

        from gmt_ros.core.dds import init_channel_factory
        from gmt_ros.core.lowlevel import FastLowCmd_ as LowCmd_
        from gmt_ros.core.remote import encode_remote

        init_channel_factory(DOMAIN, INTERFACE)
        self._crc = CRC()
        self._state_type = LowState_
        self.mode_machine = 5
        self.q = np.linspace(-0.5, 0.5, 29)
        self.quat_wxyz = [0.9, 0.1, -0.3, 0.3]  # not unit on purpose: order is what is checked
        self.remote = encode_remote(["A", "L2"], lx=0.5)
        self.publishing = False
        self.corrupt_next = 0
        self.corrupt_sent = 0
        self.last_publish = 0.0
        self.lock = threading.Lock()
        self._publish_lock = threading.Lock()
        self.lowcmd = []
        self._pub = ChannelPublisher("rt/lowstate", LowState_)
        self._pub.Init()
        self._sub = ChannelSubscriber("rt/lowcmd", LowCmd_)
        self._sub.Init(self._on_lowcmd, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _on_lowcmd(self, msg):
        t = time.monotonic()
        arr = np.array([[m.mode, m.q, m.dq, m.tau, m.kp, m.kd] for m in msg.motor_cmd]).T
        ok = self._crc.Crc(msg) == msg.crc
        with self.lock:
            self.lowcmd.append((t, msg.mode_machine, ok, arr))

    def _state(self):
        from unitree_sdk2py.idl.default import unitree_hg_msg_dds__LowState_

        msg = unitree_hg_msg_dds__LowState_()
        msg.mode_machine = self.mode_machine
        msg.imu_state.quaternion = list(self.quat_wxyz)
        msg.imu_state.gyroscope = [0.1, 0.2, 0.3]
        msg.imu_state.accelerometer = [0.0, 0.0, 9.81]
        for i in range(29):
            msg.motor_state[i].q = float(self.q[i])
            msg.motor_state[i].tau_est = 0.5
        msg.wireless_remote = list(self.remote)
        msg.crc = self._crc.Crc(msg)
        if self.corrupt_next > 0:  # a state that must be dropped: wrong CRC and marker values
            msg.mode_machine = 2
            msg.motor_state[0].q = 3.0
            self.corrupt_next -= 1
            self.corrupt_sent += 1
        return msg

    def set_publishing(self, on: bool):
        """When this returns with on=False, the last state has been written (last_publish is final)."""
        with self._publish_lock:
            self.publishing = on

    def _run(self):
        period = 1.0 / ROBOT_RATE_HZ
        deadline = time.monotonic()
        while not self._stop.is_set():
            with self._publish_lock:
                if self.publishing:
                    self._pub.Write(self._state())
                    self.last_publish = time.monotonic()
            deadline += period
            time.sleep(max(0.0, deadline - time.monotonic()))

    def commands_since(self, t0, t1=float("inf")):
        with self.lock:
            return [c for c in self.lowcmd if t0 <= c[0] < t1]

    def wait_for_command(self, since, timeout=5.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = self.commands_since(since)
            if got:
                return got[-1]
            time.sleep(0.02)
        raise AssertionError(f"no rt/lowcmd within {timeout} s")

    def close(self):
        self._stop.set()
        self._thread.join(2.0)
        self._sub.Close()
        self._pub.Close()


# ------------------------------------------------------------------------------------ ROS side


class Ros:
    """An rclpy node spinning in a thread: publishes targets at 50 Hz while ``targets`` is set,
    records what the bridge publishes."""

    def __init__(self):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Imu, JointState, Joy
        from std_msgs.msg import Float64MultiArray, String, UInt8MultiArray

        self._JointState = JointState
        self.context = rclpy.Context()  # our own context: other test modules may hold the default one
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("bridge_test", context=self.context)
        self.lock = threading.Lock()
        self._target_lock = threading.Lock()
        self.modes = []  # (time, mode)
        self.latest = {}
        self.joint_state_positions = deque(maxlen=5000)
        self.diagnostics = []
        self.targets = None  # (names, q, dq, effort) while publishing
        self.last_target_publish = 0.0
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.node.create_subscription(String, "/gmt/bridge_mode", self._on_mode, latched)
        for topic, mtype in (("/imu", Imu), ("/wireless_remote", UInt8MultiArray), ("/wireless_remote/joy", Joy),
                             ("/gmt/lowcmd_preview", JointState), ("/gmt/lowcmd_preview_gains", Float64MultiArray)):
            self.node.create_subscription(mtype, topic, lambda m, t=topic: self._keep(t, m), 10)
        self.node.create_subscription(JointState, "/joint_states", self._on_joint_states, 50)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        self.pub = self.node.create_publisher(JointState, "/gmt/joint_targets", 10)
        self.node.create_timer(0.02, self._publish_target)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def _on_mode(self, msg):
        with self.lock:
            if not self.modes or self.modes[-1][1] != msg.data:
                self.modes.append((time.monotonic(), msg.data))

    def _keep(self, topic, msg):
        with self.lock:
            self.latest[topic] = msg

    def _on_joint_states(self, msg):
        with self.lock:
            self.latest["/joint_states"] = msg
            self.joint_state_positions.append(list(msg.position))

    def _on_diag(self, msg):
        with self.lock:
            self.diagnostics.append({kv.key: kv.value for kv in msg.status[0].values})

    def set_targets(self, target):
        """When this returns with None, the last target has been published (its time is final)."""
        with self._target_lock:
            self.targets = target

    def _publish_target(self):
        with self._target_lock:
            if self.targets is None:
                return
            names, q, dq, effort = self.targets
            msg = self._JointState()
            msg.header.stamp = self.node.get_clock().now().to_msg()
            msg.name, msg.position, msg.velocity, msg.effort = list(names), list(q), list(dq), list(effort)
            self.pub.publish(msg)
            self.last_target_publish = time.monotonic()

    def mode(self):
        with self.lock:
            return self.modes[-1][1] if self.modes else None

    def modes_since(self, t0):
        with self.lock:
            return [m for t, m in self.modes if t >= t0]

    def wait_mode(self, mode, timeout=5.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.mode() == mode:
                return
            time.sleep(0.01)
        raise AssertionError(f"bridge mode is {self.mode()!r}, expected {mode!r} within {timeout} s; seen {self.modes}")

    def wait_latest(self, topic, timeout=5.0, check=lambda m: True):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                msg = self.latest.get(topic)
            if msg is not None and check(msg):
                return msg
            time.sleep(0.02)
        raise AssertionError(f"nothing (matching) on {topic} within {timeout} s")

    def reset(self):
        with self.lock:
            self.modes.clear()
            self.latest.clear()
            self.joint_state_positions.clear()
            self.diagnostics.clear()
        self.set_targets(None)

    def close(self):
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(2.0)


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def robot():
    r = Robot()
    try:
        yield r
    finally:
        r.close()


@pytest.fixture(scope="module")
def ros():
    r = Ros()
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def start_bridge(tmp_path, robot, ros):
    """Start bridge subprocesses with parameter overrides; every one is stopped at teardown."""
    procs = []

    def start(**overrides):
        robot.set_publishing(False)
        ros.reset()
        params = {"contract": str(CONTRACT), "dds_domain": DOMAIN, "network_interface": INTERFACE,
                  "dry_run": False, "link_timeout_s": 1.0, **TIMEOUTS, **overrides}
        cmd = [sys.executable, "-m", "gmt_ros.nodes.bridge_node", "--ros-args",
               "--params-file", str(REPO / "config" / "bridge.yaml")]
        for k, v in params.items():
            cmd += ["-p", f"{k}:={str(v).lower() if isinstance(v, bool) else v}"]
        log = open(tmp_path / f"bridge{len(procs)}.log", "w")
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        proc.log_path = log.name
        procs.append((proc, log))
        return proc

    try:
        yield start
    finally:
        for proc, log in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
            log.close()
            print(f"--- {log.name}\n{Path(log.name).read_text()[-3000:]}")
        robot.set_publishing(False)
        ros.set_targets(None)


def is_damping(arr):
    return np.all(arr[0, :29] == 1) and np.all(arr[4, :29] == 0) and np.all(arr[5, :29] == 8.0)


def target_for(seed=0.0):
    names, _, _ = contract_gains()
    names = list(reversed(names))  # by name, not by position
    q = [0.05 * i - 0.3 + seed for i in range(len(names))]
    dq = [0.01 * i for i in range(len(names))]
    effort = [-0.1 * i for i in range(len(names))]
    return names, q, dq, effort


def assert_tracks(arr, target):
    from gmt_ros.core import g1

    names, q, dq, effort = target
    _, gains, held = contract_gains()
    for n, qi, dqi, ei in zip(names, q, dq, effort):
        s = g1.SLOT_OF[n]
        np.testing.assert_allclose(arr[1:6, s], [qi, dqi, ei, *gains[n]], rtol=1e-6, atol=1e-6, err_msg=n)
    for n, (qh, kp, kd) in held.items():
        s = g1.SLOT_OF[n]
        np.testing.assert_allclose(arr[1:6, s], [qh, 0.0, 0.0, kp, kd], atol=1e-6, err_msg=n)
    assert np.all(arr[0, :29] == 1)


def assert_unused_slots_off(arr):
    assert np.all(arr[:, 29:] == 0), "slots 29-34 must be disabled with zeros"


# ------------------------------------------------------------------------------------ tests


def test_channel_factory_guard_interface_check_and_link_timeout(robot):
    from gmt_ros.core import dds

    assert dds.channel_factory_settings() == (DOMAIN, INTERFACE)
    dds.init_channel_factory(DOMAIN, INTERFACE)  # same settings: fine
    with pytest.raises(RuntimeError, match=f"already initialised on interface 'lo' domain {DOMAIN}"):
        dds.init_channel_factory(DOMAIN + 1, INTERFACE)
    with pytest.raises(ValueError, match="network interface 'gmt_no_such_if0' does not exist.*available: .*lo"):
        dds.check_interface("gmt_no_such_if0")
    with pytest.raises(ValueError, match="DDS domain must be an integer"):
        dds.init_channel_factory(-1, INTERFACE)
    with pytest.raises(dds.LinkTimeoutError, match=f"no rt/gmt_test_silent within 0.3 s on interface 'lo' domain {DOMAIN}"):
        dds.wait_for_lowstate(0.3, topic="rt/gmt_test_silent")
    with pytest.raises(RuntimeError, match="rmw_fastrtps_cpp"):
        dds.check_rmw_compatible("rmw_cyclonedds_cpp")


@pytest.mark.slow
def test_bridge_damps_then_tracks_targets_by_name(start_bridge, robot, ros):
    t_start = time.monotonic()
    proc = start_bridge()
    ros.wait_mode("no_state", timeout=15)
    time.sleep(0.5)
    assert robot.commands_since(t_start) == [], "nothing may be sent before any state arrived"

    # State arrives: damping before any target, mode_machine copied, slots 29-34 off, SDK CRC valid.
    t_state = time.monotonic()
    robot.mode_machine = 5
    robot.set_publishing(True)
    robot.wait_for_command(t_state)
    ros.wait_mode("damping_no_target")
    time.sleep(0.2)
    cmds = robot.commands_since(t_state)
    assert all(ok for _, _, ok, _ in cmds), "every rt/lowcmd must carry a valid CRC"
    assert all(mm == 5 for _, mm, _, _ in cmds)
    assert all(is_damping(a) for *_, a in cmds)
    assert_unused_slots_off(cmds[-1][3])

    # Rate, measured at the receiver over 2 s.
    t0 = time.monotonic()
    time.sleep(2.0)
    rate = len(robot.commands_since(t0, t0 + 2.0)) / 2.0
    with ros.lock:
        sent = [{k: d[k] for k in d if "rate" in k or "writer" in k} for d in ros.diagnostics[-2:]]
    print(f"\nrt/lowcmd received at {rate:.0f} Hz; the bridge reports {sent} (command_rate_hz 500)")
    assert rate >= 400

    # State republished on ROS (IMU quaternion converted to x, y, z, w).
    js = ros.wait_latest("/joint_states")
    from gmt_ros.core import g1

    assert list(js.name) == list(g1.JOINT_NAMES)
    np.testing.assert_allclose(js.position, robot.q, atol=1e-6)
    np.testing.assert_allclose(js.effort, 0.5)
    imu = ros.wait_latest("/imu")
    o = imu.orientation
    np.testing.assert_allclose([o.x, o.y, o.z, o.w], [0.1, -0.3, 0.3, 0.9], atol=1e-6)
    assert imu.header.frame_id == "pelvis"
    np.testing.assert_allclose([imu.linear_acceleration.z, imu.angular_velocity.y], [9.81, 0.2], atol=1e-5)
    assert bytes(ros.wait_latest("/wireless_remote").data) == robot.remote
    joy = ros.wait_latest("/wireless_remote/joy")
    assert joy.buttons[8] == 1 and joy.buttons[5] == 1 and sum(joy.buttons) == 2 and joy.axes[0] == 0.5

    # Targets: q/dq/tau by name with the contract's kp/kd, wrists held.
    target = target_for()
    ros.set_targets(target)
    ros.wait_mode("tracking")
    time.sleep(0.1)
    _, mm, ok, arr = robot.commands_since(time.monotonic() - 0.05)[-1]
    assert ok and mm == 5
    assert_tracks(arr, target)
    assert_unused_slots_off(arr)

    # mode_machine follows the robot's state.
    t_switch = time.monotonic()
    robot.mode_machine = 6
    time.sleep(0.3)
    later = robot.commands_since(t_switch + 0.1)
    assert later and all(mm == 6 for _, mm, _, _ in later)
    assert proc.poll() is None


@pytest.mark.slow
def test_stale_target_holds_then_damps_and_stale_state_damps(start_bridge, robot, ros):
    start_bridge()
    ros.wait_mode("no_state", timeout=15)
    robot.mode_machine = 5
    robot.set_publishing(True)
    target = target_for(seed=0.1)
    ros.set_targets(target)
    ros.wait_mode("tracking")
    time.sleep(0.3)

    # Targets stop: hold the last one for stale_hold_s after target_timeout_s, then damping.
    ros.set_targets(None)
    t_last = ros.last_target_publish
    time.sleep(1.2)
    timeout, hold = TIMEOUTS["target_timeout_s"], TIMEOUTS["stale_hold_s"]
    holding = robot.commands_since(t_last + timeout + 0.05, t_last + timeout + hold - 0.05)
    damped = robot.commands_since(t_last + timeout + hold + 0.15, t_last + 1.2)
    assert len(holding) > 50 and len(damped) > 100
    for *_, arr in holding:
        assert_tracks(arr, target)
    assert all(is_damping(arr) for *_, arr in damped)
    with ros.lock:
        modes = [m for _, m in ros.modes]
    assert modes[-3:] == ["tracking", "holding_stale_target", "damping_stale_target"], modes

    # A fresh target resumes tracking; then the robot goes quiet: damping despite fresh targets.
    ros.set_targets(target)
    ros.wait_mode("tracking")
    robot.set_publishing(False)
    t_quiet = robot.last_publish
    time.sleep(0.8)
    after = robot.commands_since(t_quiet + TIMEOUTS["state_timeout_s"] + 0.15)
    not_damping = [round(t - t_quiet, 3) for t, *_, arr in after if not is_damping(arr)]
    assert len(after) > 100 and not not_damping, f"not damping at {not_damping[:10]} s after the last state"
    assert all(mm == 5 for _, mm, _, _ in after), "damping keeps the last mode_machine"
    assert ros.mode() == "damping_stale_state"
    robot.set_publishing(True)
    ros.wait_mode("tracking")


@pytest.mark.slow
def test_bad_crc_states_are_dropped_and_counted_and_sigterm_damps(start_bridge, robot, ros):
    proc = start_bridge()
    ros.wait_mode("no_state", timeout=15)
    robot.mode_machine = 5
    robot.set_publishing(True)
    ros.wait_mode("damping_no_target")
    from gmt_ros.core import dds

    first = dds.wait_for_lowstate(2.0)  # the link check used before start-up
    assert first.mode_machine == 5
    robot.corrupt_sent = 0
    t_bad = time.monotonic()
    robot.corrupt_next = 5
    time.sleep(0.3)
    assert robot.corrupt_sent == 5

    end = time.monotonic() + 3.0
    while time.monotonic() < end:
        with ros.lock:
            counts = [int(d["bad_crc_count"]) for d in ros.diagnostics]
        if counts and counts[-1] >= 5:
            break
        time.sleep(0.1)
    assert counts and counts[-1] == 5, f"bad_crc_count in /diagnostics: {counts}"
    with ros.lock:
        seen = list(ros.joint_state_positions)
        diag = ros.diagnostics[-1]
    assert seen and all(p[0] != 3.0 for p in seen), "a bad-CRC state reached /joint_states"
    assert all(mm == 5 for _, mm, _, _ in robot.commands_since(t_bad)), "a bad-CRC state's mode_machine was used"
    assert diag["mode"] == "damping_no_target" and diag["mode_machine"] == "5"
    end = time.monotonic() + 3.0  # the first report may cover a partial second
    while time.monotonic() < end:
        with ros.lock:
            state_rates = [float(d["lowstate_rate_hz"]) for d in ros.diagnostics]
        if max(state_rates) > 0.5 * ROBOT_RATE_HZ:
            break
        time.sleep(0.1)
    assert max(state_rates) > 0.5 * ROBOT_RATE_HZ, state_rates

    # SIGTERM while tracking: damping for shutdown_damping_s, then the process ends cleanly.
    target = target_for()
    ros.set_targets(target)
    ros.wait_mode("tracking")
    time.sleep(0.2)
    t_sig = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    t_exit = time.monotonic()
    time.sleep(0.3)
    after = robot.commands_since(t_sig)
    first_damping = next(t for t, *_, arr in after if is_damping(arr))
    print(f"\nfirst damping command {1e3 * (first_damping - t_sig):.1f} ms after SIGTERM")
    after = robot.commands_since(first_damping)
    assert first_damping - t_sig < 0.1
    assert len(after) >= 50, f"only {len(after)} commands after SIGTERM"
    assert all(is_damping(arr) for *_, arr in after)
    assert not robot.commands_since(t_exit + 0.05), "commands after the process ended"


@pytest.mark.slow
def test_dry_run_never_writes_lowcmd(start_bridge, robot, ros):
    t_start = time.monotonic()
    start_bridge(dry_run=True)
    ros.wait_mode("no_state", timeout=15)
    t0 = time.monotonic()
    robot.mode_machine = 6
    robot.set_publishing(True)
    ros.wait_mode("damping_no_target")
    names, q, dq, effort = target_for()
    ros.set_targets((names[1:], q[1:], dq[1:], effort[1:]))  # a joint missing: rejected, counted
    end = time.monotonic() + 3.0
    while time.monotonic() < end:
        with ros.lock:
            rejected = [int(d["rejected_targets"]) for d in ros.diagnostics]
        if rejected and rejected[-1] > 0:
            break
        time.sleep(0.1)
    assert rejected and rejected[-1] > 0 and ros.mode() == "damping_no_target"
    target = target_for(seed=-0.05)
    ros.set_targets(target)
    ros.wait_mode("tracking")
    from gmt_ros.core import g1

    names, q, _, _ = target
    expected = {n: v for n, v in zip(names, q)}

    def matches(msg):
        return all(abs(msg.position[g1.SLOT_OF[n]] - v) < 1e-9 for n, v in expected.items())

    preview = ros.wait_latest("/gmt/lowcmd_preview", check=matches)
    assert preview.header.frame_id == "mode_machine=6"
    gains = ros.wait_latest("/gmt/lowcmd_preview_gains")
    _, contract_gain, held = contract_gains()
    kp = np.array(gains.data[:29])
    for n, (k, _) in contract_gain.items():
        assert kp[g1.SLOT_OF[n]] == k
    assert kp[g1.SLOT_OF["left_wrist_roll_joint"]] == held["left_wrist_roll_joint"][1]
    time.sleep(1.0)
    assert robot.commands_since(t_start) == [], "dry_run wrote rt/lowcmd"


@pytest.mark.slow
def test_bad_configuration_stops_with_a_clear_message(start_bridge):
    for override, message in (
        ({"contract": "/nonexistent/contract.yaml"}, "/nonexistent/contract.yaml not found"),
        ({"state_timeout_s": -1.0}, "state_timeout_s must be a positive number of seconds, got -1.0"),
    ):
        proc = start_bridge(**override)
        assert proc.wait(20) == 1
        text = Path(proc.log_path).read_text()
        assert "cannot start" in text and message in text, text
