"""gmt_bridge: ROS 2 <-> Unitree G1 low-level DDS (rt/lowstate in, rt/lowcmd out).

Every motor command is decided by the safety supervisor (``gmt_ros.core.supervisor``): zero
torque -> damping -> ramp -> hold -> policy, faults latch into damping. docs/SAFETY.md is the
operator's page (buttons, services, timeouts, start-up checks, dry run).

=============================================  ====================  ==========================
work                                           thread                rate
=============================================  ====================  ==========================
rt/lowstate -> CRC check -> latest state;      SDK listener          robot rate (≈ 500 Hz)
remote buttons -> supervisor.buttons; the
first ``startup_check_states`` states ->
supervisor.startup_check; every n-th
republished on /joint_states, /imu
(``state_publish_rate_hz``, n from the
measured lowstate rate); the remote on
/wireless_remote(/joy) when it changes (+10 Hz)
supervisor.tick(state, target) ->              writer (own thread,   ``command_rate_hz`` (500),
pack_lowcmd -> rt/lowcmd (dry_run: no          absolute deadlines)   preview ``preview_rate_hz``
writer; /gmt/lowcmd_preview(_gains) instead)
``target_topic`` JointState -> contract        writer: the newest    policy rate (≈ 50 Hz)
identity check (header.frame_id) ->            sample, taken at
TargetMapper -> latest target, aged from       each tick
header.stamp
/gmt/supervisor/{start,policy,hold,stop,       executor              on request
estop,clear} (std_srvs/Trigger),
/gmt/supervisor/request (std_msgs/String)
/gmt/supervisor/state (JSON, reliable,         executor              on every event + 10 Hz
transient local) and one log line per event
/diagnostics                                   executor              1 Hz
SIGINT/SIGTERM -> latched damping for          signal thread         once
``shutdown_damping_s`` -> exit
=============================================  ====================  ==========================

The supervisor is not thread-safe: one lock serialises it. The writer holds it only for
``tick`` (≈ 0.1-0.2 ms); services, the request topic and the remote hold it only for
``request``/``buttons`` (microseconds), so a service call never delays a command. Logging and
publishing the state happen in the executor, woken by a guard condition when an event occurs,
never in the writer.

The SDK runs CycloneDDS 0.10.2 in this process, so ROS must use Fast DDS: rmw_cyclonedds_cpp
(RMW_IMPLEMENTATION, or the RMW in use) and a second libddsc mapped into the process are refused at
start with what to do (gmt_ros.adapters.dds.check_single_cyclonedds; README, "On a ROS 2 host").
"""
from __future__ import annotations

import functools
import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np

from gmt_ros.adapters import dds

dds.exit_if_cyclonedds_rmw("gmt_bridge")  # before rclpy loads the RMW it names (rcl exits 102 without a word)
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.signals import SignalHandlerOptions
from rclpy.time import Time
from sensor_msgs.msg import Imu, JointState, Joy
from std_msgs.msg import Float64MultiArray, MultiArrayDimension, String, UInt8MultiArray
from std_srvs.srv import Trigger
from unitree_sdk2py.core.channel import ChannelPublisher, ChannelSubscriber

from gmt_ros.adapters.lowlevel import (
    CrcMismatchError,
    FastLowCmd_,
    FastLowState_,
    live_motor_slots,
    new_lowcmd,
    pack_lowcmd,
    unpack_lowstate,
)
from gmt_ros.core import g1, process_tuning
from gmt_ros.core.command import JointCommand
from gmt_ros.core.command_limits import GROSS_MARGIN_RAD, CommandLimits
from gmt_ros.core.command_table import TargetMapper
from gmt_ros.core.contract import DEFAULT_POLICY, ContractId, load_contract
from gmt_ros.core.fall_check import FALL_HEIGHT_M, FALL_TILT_RAD
from gmt_ros.core.height_estimate import PelvisHeightEstimator
from gmt_ros.core.remote import BUTTON_NAMES, decode_remote
from gmt_ros.core.supervisor import Mode, Request, RequestOutcome, Supervisor, SupervisorConfig
from gmt_ros.nodes.node_cli import exit_if_help
from gmt_ros.nodes.parameters import read_parameters
from gmt_ros.nodes.polled_topics import PolledTopics

NODE_NAME = "gmt_bridge"
SUPERVISOR_NS = "/gmt/supervisor"
STATE_TOPIC = f"{SUPERVISOR_NS}/state"
REQUEST_TOPIC = f"{SUPERVISOR_NS}/request"
PREVIEW_TOPIC = "/gmt/lowcmd_preview"
PREVIEW_GAINS_TOPIC = "/gmt/lowcmd_preview_gains"
_JOINT_NAMES = list(g1.JOINT_NAMES)
LATE_TARGET_GAP_S = 0.06  # PD targets further apart than this (3 policy periods) are logged
REMOTE_HEARTBEAT_STATES = 50  # /wireless_remote at least every 50 states (10 Hz) when unchanged
_MAX_CATCH_UP_PERIODS = 5  # later than this the writer re-anchors its schedule instead of catching up

# name: (default, type, description)
PARAMETERS = {
    "network_interface": ("lo", str, "interface of the robot's DDS network (robot: its wired NIC; simulator: lo)"),
    "dds_domain": (1, int, "DDS domain of rt/lowstate and rt/lowcmd (robot: 0; simulator: usually 1)"),
    "contract": (DEFAULT_POLICY, str, "policy contract name (models/<name>/contract.yaml) or path: default pose, kp/kd, held joints"),
    "target_topic": ("/gmt/joint_targets", str, "sensor_msgs/JointState PD targets by joint name"),
    "command_rate_hz": (500.0, float, "rt/lowcmd rate"),
    "target_timeout_s": (0.1, float, "policy mode: a PD target older than this (since header.stamp) is a fault -> damping"),
    "state_timeout_s": (0.1, float, "no rt/lowstate for this long: fault -> damping"),
    "ramp_time_s": (3.0, float, "minimum-jerk ramp from the measured pose to the default pose"),
    "damping_kd": (g1.DAMPING_KD, float, "kd of the damping command (kp 0) on every motor"),
    "fall_tilt_rad": (FALL_TILT_RAD, float, "pelvis inclination from vertical above this: fall -> damping"),
    "fall_height_check": (True, bool, "also detect falls from a pelvis height estimate (IMU + leg kinematics)"),
    "fall_height_m": (FALL_HEIGHT_M, float, "pelvis height estimate below this: fall -> damping"),
    "startup_check_states": (10, int, "rt/lowstate messages (after the first) whose live motor slots and mode_machine are checked against the contract"),
    "release_motion_service": (False, bool, "at start, release the robot's built-in motion service with MotionSwitcherClient (CheckMode/ReleaseMode)"),
    "dry_run": (True, bool, "publish what would be sent on /gmt/lowcmd_preview and never write rt/lowcmd"),
    "gross_margin_rad": (GROSS_MARGIN_RAD, float, "a q target beyond a joint limit by more than this is a fault (smaller excursions are clipped); calibrated in gmt_ros/core/command_limits.py"),
    "stop_torque_fraction": (1.0, float, "a q target past a joint limit is clipped where the PD would push the joint into its stop with this fraction of the motor's rated torque (gmt_ros/core/command_limits.py, docs/SAFETY.md)"),
    "state_publish_rate_hz": (100.0, float, "/joint_states and /imu rate: every n-th rt/lowstate, n from the measured lowstate rate (never below the policy's rate: all states below it)"),
    "min_lowstate_rate_hz": (400.0, float, "warn when rt/lowstate arrives slower than this (a G1 publishes 500 Hz; Unitree's Python simulator 1/SIMULATE_DT)"),
    "check_lowstate_crc": (True, bool, "verify each rt/lowstate's CRC (a G1 always sets it); false only for Unitree's Python simulator (crc 0), on loopback with a non-zero domain (config/bridge_unitree_mujoco.yaml)"),
    "simulator_mode_machine": (0, int, "mode_machine to assume when the robot reports 0 (Unitree's Python simulator never sets it; 5 = 29-DoF); 0: none. Loopback with a non-zero domain only"),
    "preview_rate_hz": (50.0, float, "dry_run preview rate"),
    "status_rate_hz": (10.0, float, "/gmt/supervisor/state periodic rate (it is also published on every event)"),
    "link_timeout_s": (2.0, float, "warn when no rt/lowstate arrived this long after start"),
    "shutdown_damping_s": (0.5, float, "damping sent on shutdown before the writer stops"),
    "mode_pr": (0, int, "LowCmd_.mode_pr: 0 ankles as pitch/roll joints (policies), 1 parallel motors"),
    "writer_priority": (0, int, "SCHED_FIFO priority 1-99 for the lowcmd writer thread (needs CAP_SYS_NICE); 0: normal"),
}


PROFILE_HINT = ("use the unitree_mujoco profile: --params-file config/bridge_unitree_mujoco.yaml after bridge.yaml "
                "(launch: profile:=unitree_mujoco; docs/UNITREE_MUJOCO.md)")
CRC_ZERO_HINT = f"crc 0: Unitree's Python simulator (unitree_mujoco) does not set it; {PROFILE_HINT}"


def crc_refusal_text(bad: int, zero: int, interface: str, domain: int) -> str:
    """Why no robot state was accepted although states arrive."""
    if zero == bad:
        return (f"{bad} rt/lowstate received on interface {interface!r} domain {domain}, all with CRC 0 (none "
                f"accepted): Unitree's Python simulator does not set it; {PROFILE_HINT}")
    return (f"{bad} rt/lowstate received on interface {interface!r} domain {domain}, all with a wrong CRC "
            f"({zero} with CRC 0): another robot or a publisher with a different message layout?")


class BridgeConfigError(ValueError):
    """A parameter value the bridge cannot run with."""


class BridgeHooks:
    """Observation points for measurement tools (``gmt-ros bench``), given to ``BridgeNode(hooks=)``
    or ``main(hooks=)``; the methods do nothing here. They run in the bridge's own threads and must
    be quick."""

    def state_received(self, t: float, wall: float, tick: int) -> None:
        """SDK listener thread, after a valid rt/lowstate was handled (and republished): ``t`` and
        ``wall`` are time.monotonic() and time.time() when its callback began, ``tick`` its tick."""

    def command_written(self, t: float, target_stamp_ns: int, policy_mode: bool, written: bool) -> None:
        """Writer thread, end of a tick (time.monotonic() ``t``): the header stamp of the PD target
        the supervisor was given (0: none), whether it was in policy mode, whether a lowcmd went out."""


def foreign_target_text(frame_id: str, own: ContractId) -> str:
    """Why a PD target whose header.frame_id is not this bridge's contract identity is refused."""
    if not frame_id:
        return (f"the target names no contract (header.frame_id is empty); PD targets must carry the identity "
                f"of the contract they were computed under, '{own.wire}' for this bridge's")
    return (f"the target was computed under contract '{frame_id}' but this bridge runs '{own.wire}': start the "
            f"policy and the bridge with the same contract (its default pose, gains and held joints)")


@dataclass
class _WriterTiming:
    """Per diagnostics period: how late ticks started and how long their work took (s)."""

    ticks: int = 0
    work_sum: float = 0.0
    work_max: float = 0.0
    late_max: float = 0.0


@dataclass
class _Counters:
    lowstate: int = 0
    bad_crc: int = 0
    crc_zero: int = 0  # of bad_crc: crc field 0 (Unitree's Python simulator never sets it)
    state_errors: int = 0
    lowcmd: int = 0
    write_failures: int = 0
    rejected_targets: int = 0
    targets: int = 0
    overruns: int = 0


def release_motion_service(logger, timeout_s: float = 3.0, attempts: int = 5) -> None:
    """Release the robot's built-in motion service (locomotion) so low-level commands are obeyed:
    MotionSwitcherClient CheckMode -> ReleaseMode until no mode is active, as Unitree's low-level
    examples do. Needs the SDK channel factory initialised. Raises RuntimeError when the service
    does not answer or a mode stays active. Not testable without a robot: kept this small."""
    from unitree_sdk2py.comm.motion_switcher.motion_switcher_client import MotionSwitcherClient

    client = MotionSwitcherClient()
    client.SetTimeout(timeout_s)
    client.Init()
    for attempt in range(1, attempts + 1):
        code, result = client.CheckMode()
        if code != 0:
            raise RuntimeError(
                f"release_motion_service: MotionSwitcher CheckMode failed (code {code}): the robot's service did "
                "not answer on this interface/domain; release it with the remote (L2+R2) or set release_motion_service false"
            )
        name = (result or {}).get("name", "")
        if not name:
            logger.info("release_motion_service: no built-in motion mode is active; low-level control is free")
            return
        logger.warning(f"release_motion_service: built-in motion mode {name!r} is active: ReleaseMode "
                       f"(attempt {attempt}/{attempts})")
        client.ReleaseMode()
        time.sleep(1.0)
    raise RuntimeError(f"release_motion_service: the built-in motion mode is still active after {attempts} ReleaseMode calls")


class BridgeNode(Node):
    def __init__(self, hooks: BridgeHooks | None = None, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        self._hooks = hooks
        p = read_parameters(self, PARAMETERS, BridgeConfigError)
        self.params = p
        if p["command_rate_hz"] <= 0 or p["preview_rate_hz"] <= 0 or p["status_rate_hz"] <= 0:
            raise BridgeConfigError("command_rate_hz, preview_rate_hz and status_rate_hz must be positive")
        if not p["state_publish_rate_hz"] > 0:
            raise BridgeConfigError(f"state_publish_rate_hz must be positive, got {p['state_publish_rate_hz']}")
        simulator_only = [n for n in ("check_lowstate_crc", "simulator_mode_machine")
                          if (n == "check_lowstate_crc" and not p[n]) or (n == "simulator_mode_machine" and p[n])]
        if simulator_only and (p["network_interface"] != "lo" or p["dds_domain"] == 0):
            raise BridgeConfigError(
                f"{' and '.join(simulator_only)} (Unitree's Python simulator profile) only on loopback with a non-zero "
                f"domain, got interface {p['network_interface']!r} domain {p['dds_domain']}: a real G1 sets the CRC and "
                f"its mode_machine")
        if not 0 <= p["simulator_mode_machine"] <= 255:
            raise BridgeConfigError(f"simulator_mode_machine must be 0..255, got {p['simulator_mode_machine']}")
        if p["startup_check_states"] < 1:
            raise BridgeConfigError(f"startup_check_states must be >= 1, got {p['startup_check_states']}")
        if not 0 <= p["writer_priority"] <= 99:
            raise BridgeConfigError(f"writer_priority must be 0 (normal) or a SCHED_FIFO priority 1..99, got {p['writer_priority']}")
        if not (math.isfinite(p["gross_margin_rad"]) and p["gross_margin_rad"] > 0):
            raise BridgeConfigError(f"gross_margin_rad must be a positive number of radians, got {p['gross_margin_rad']}")
        if not (math.isfinite(p["stop_torque_fraction"]) and 0.0 <= p["stop_torque_fraction"] <= 1.0):
            raise BridgeConfigError(f"stop_torque_fraction must be within [0, 1] (of each motor's rated torque), "
                                    f"got {p['stop_torque_fraction']}")
        if p["mode_pr"] not in (0, 1):
            raise BridgeConfigError(f"mode_pr must be 0 or 1, got {p['mode_pr']}")
        try:
            config = SupervisorConfig(
                state_timeout_s=p["state_timeout_s"], target_timeout_s=p["target_timeout_s"],
                ramp_time_s=p["ramp_time_s"], damping_kd=p["damping_kd"], fall_tilt_rad=p["fall_tilt_rad"],
                fall_height_m=p["fall_height_m"],
            )
        except ValueError as exc:
            raise BridgeConfigError(str(exc)) from None
        contract = load_contract(p["contract"])
        table = contract.command_table  # the one pose/gain table: target mapping, ramp and hold
        self._mapper = TargetMapper(table)
        self.contract_id = contract.identity
        fall_height = PelvisHeightEstimator() if p["fall_height_check"] else None
        limits = CommandLimits(gross_margin_rad=p["gross_margin_rad"], stop_torque=p["stop_torque_fraction"] * g1.TAU_MAX)
        self._sup = Supervisor(table, config, limits, fall_height)
        self._sup_lock = threading.Lock()
        dds.check_rmw_compatible(rclpy.get_rmw_implementation_identifier())
        dds.check_single_cyclonedds()  # the RMW's and the SDK's are both loaded by now
        dds.init_channel_factory(p["dds_domain"], p["network_interface"])
        if p["release_motion_service"]:
            self.get_logger().warning("release_motion_service is true: releasing the robot's built-in motion service")
            release_motion_service(self.get_logger())
        else:
            self.get_logger().info(
                "release_motion_service is false: the robot's built-in motion service is not touched; "
                "release it before leaving dry run (remote L2+R2, or see docs/SAFETY.md)"
            )

        self.counters = _Counters()
        self._timing = _WriterTiming()
        self._latest_state = None  # RobotState, replaced whole (atomic) by the SDK thread
        self._latest_target = None  # (JointCommand, computed_at on time.monotonic, header stamp in ns)
        self._start = time.monotonic()
        self._epoch_offset = time.time() - self._start  # monotonic -> wall clock, for the state topic
        self._link_warned = False
        self._stop = threading.Event()
        self._shutdown_until: float | None = None
        self._diag_last = (self._start, 0, 0)
        self._writer_events_seen = 0
        self._startup_live = np.zeros(g1.NUM_MOTOR_SLOTS, bool)
        self._startup_prev = None
        self._startup_seen = 0
        self._publish_every = 1  # every state until the lowstate rate is measured (diagnostics, 1 Hz)
        self._slow_warned = False

        self._pub_joint_states = self.create_publisher(JointState, "/joint_states", 10)
        self._pub_imu = self.create_publisher(Imu, "/imu", 10)
        self._last_remote: bytes | None = None
        self._last_target_arrival = 0.0
        self._pub_remote = self.create_publisher(UInt8MultiArray, "/wireless_remote", 10)
        self._pub_joy = self.create_publisher(Joy, "/wireless_remote/joy", 10)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._pub_state = self.create_publisher(String, STATE_TOPIC, latched)
        self._pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._pub_preview = self._pub_preview_gains = None
        if p["dry_run"]:
            self._pub_preview = self.create_publisher(JointState, PREVIEW_TOPIC, 10)
            self._pub_preview_gains = self.create_publisher(Float64MultiArray, PREVIEW_GAINS_TOPIC, 10)
        # Best effort accepts both reliable and best-effort target publishers. The writer takes the
        # newest target from the DDS reader at each tick (gmt_ros.nodes.polled_topics): a target
        # does not wait for this node's executor, which may be busy or starved of CPU.
        self._readers = PolledTopics(f"{NODE_NAME}_target_reader", context=self.context)
        self._targets_in = self._readers.subscribe(JointState, p["target_topic"], qos_profile_sensor_data)
        for req in Request:
            self.create_service(Trigger, f"{SUPERVISOR_NS}/{req.value}", functools.partial(self._on_service, req))
        self.create_subscription(String, REQUEST_TOPIC, self._on_request_topic, 10)
        self._report_guard = self.create_guard_condition(self._report)
        self.create_timer(1.0 / p["status_rate_hz"], self._report)
        self.create_timer(1.0, self._on_diagnostics_timer)

        self._lowcmd_pub = None
        if not p["dry_run"]:
            self._lowcmd_pub = ChannelPublisher(dds.LOWCMD_TOPIC, FastLowCmd_)
            self._lowcmd_pub.Init()
        self._lowstate_sub = ChannelSubscriber(dds.LOWSTATE_TOPIC, FastLowState_)
        self._lowstate_sub.Init(self._on_lowstate, 0)

        self._writer = threading.Thread(target=self._writer_loop, name="lowcmd_writer", daemon=True)
        self._writer.start()
        self._report()
        self.get_logger().info(
            f"bridge up: interface {p['network_interface']!r} domain {p['dds_domain']}, contract {self.contract_id} "
            f"({len(contract.joint_names)} policy joints, {len(contract.held_joints)} held), targets on "
            f"{p['target_topic']}, lowcmd at {p['command_rate_hz']:.0f} Hz, supervisor in zero_torque "
            f"(services {SUPERVISOR_NS}/*, state on {STATE_TOPIC})"
            + (", DRY RUN: rt/lowcmd is never written" if p["dry_run"] else ", WRITING rt/lowcmd")
        )

    # ---------------------------------------------------------------------------------------
    # parameters

    # ---------------------------------------------------------------------------------------
    # rt/lowstate (SDK listener thread)

    def _on_lowstate(self, msg) -> None:
        now = time.monotonic()
        wall = time.time() if self._hooks is not None else 0.0
        try:
            state = unpack_lowstate(msg, now, check_crc=self.params["check_lowstate_crc"])
            remote = decode_remote(msg.wireless_remote)
        except CrcMismatchError as exc:
            self.counters.bad_crc += 1
            if msg.crc == 0:
                self.counters.crc_zero += 1
            self.get_logger().warning(f"dropped rt/lowstate: {exc}" + (f"; {CRC_ZERO_HINT}" if msg.crc == 0 else ""),
                                      throttle_duration_sec=1.0)
            return
        except Exception as exc:  # never let the SDK's reader thread die
            self.counters.state_errors += 1
            self.get_logger().error(f"could not read rt/lowstate: {exc!r}", throttle_duration_sec=1.0)
            return
        if state.mode_machine == 0 and self.params["simulator_mode_machine"]:
            state.mode_machine = self.params["simulator_mode_machine"]
        self._latest_state = state
        self.counters.lowstate += 1
        try:
            self._supervise_state(msg, state, remote, now)
        except Exception as exc:
            self.get_logger().error(f"supervisor input from rt/lowstate failed: {exc!r}", throttle_duration_sec=1.0)
        n = self.counters.lowstate
        try:
            if n % self._publish_every == 0:
                self._publish_state(state)
            # The remote changes a few times a second at most: on change, plus a heartbeat, rather
            # than two more messages per state.
            raw = bytes(msg.wireless_remote)
            if raw != self._last_remote or n % REMOTE_HEARTBEAT_STATES == 0:
                self._last_remote = raw
                self._publish_remote(raw, remote)
        except Exception as exc:
            if rclpy.ok(context=self.context):
                self.get_logger().error(f"could not republish robot state: {exc!r}", throttle_duration_sec=1.0)
        if self._hooks is not None:
            self._hooks.state_received(now, wall, int(msg.tick))

    def _supervise_state(self, msg, state, remote, now: float) -> None:
        """Start-up check over the first states, then the remote's buttons (every state)."""
        if self._shutdown_until is not None:
            return
        if not self._sup.startup_checked and not np.any(state.imu_quat):
            return  # nothing measured yet (a simulator publishing before its first physics step)
        if not self._sup.startup_checked:
            # A motor that happens to read all zeros once is not dead: OR over several states.
            self._startup_live |= live_motor_slots(msg, self._startup_prev)
            self._startup_prev = msg
            self._startup_seen += 1
            if self._startup_seen >= self.params["startup_check_states"]:
                live = np.flatnonzero(self._startup_live[: g1.NUM_BODY_JOINTS])
                with self._sup_lock:
                    self._sup.startup_check(state.mode_machine, live, now)
                self._startup_prev = None
                self._trigger_report()
        with self._sup_lock:
            outcomes = self._sup.buttons(remote.buttons, now)
        if outcomes:
            pressed = "+".join(sorted(remote.buttons))
            for outcome in outcomes:
                self.get_logger().info(f"remote {pressed}: {outcome.message}")
            self._trigger_report()

    def _publish_state(self, state) -> None:
        stamp = self.get_clock().now().to_msg()
        js = JointState()
        js.header.stamp = stamp
        js.name = _JOINT_NAMES
        js.position = state.joint_pos.tolist()
        js.velocity = state.joint_vel.tolist()
        js.effort = state.joint_tau.tolist()
        self._pub_joint_states.publish(js)

        imu = Imu()
        imu.header.stamp = stamp
        imu.header.frame_id = "pelvis"
        w, x, y, z = state.imu_quat.tolist()  # core order w,x,y,z → ROS x,y,z,w
        imu.orientation.x, imu.orientation.y, imu.orientation.z, imu.orientation.w = x, y, z, w
        imu.angular_velocity.x, imu.angular_velocity.y, imu.angular_velocity.z = state.imu_gyro.tolist()
        imu.linear_acceleration.x, imu.linear_acceleration.y, imu.linear_acceleration.z = state.imu_acc.tolist()
        self._pub_imu.publish(imu)

    def _publish_remote(self, raw: bytes, remote) -> None:
        self._pub_remote.publish(UInt8MultiArray(data=raw))
        joy = Joy()
        joy.header.stamp = self.get_clock().now().to_msg()
        joy.axes = [remote.lx, remote.ly, remote.rx, remote.ry, remote.l2_analog]
        joy.buttons = [int(n in remote.buttons) for n in BUTTON_NAMES]
        self._pub_joy.publish(joy)

    # ---------------------------------------------------------------------------------------
    # targets (writer thread) and operator requests (executor)

    def _poll_target(self) -> None:
        try:
            got = self._targets_in.take_newest()
        except Exception as exc:  # an undecodable sample: the supervisor ages the previous target
            self.counters.rejected_targets += 1
            self.get_logger().warning(f"could not take a target sample: {exc!r}", throttle_duration_sec=1.0)
            return
        if got is not None:
            self._on_target(*got)

    def _on_target(self, msg: JointState, received: float | None = None) -> None:
        """A new PD target; ``received``: when DDS received it (time.monotonic())."""
        received = time.monotonic() if received is None else received
        try:
            if msg.header.frame_id != self.contract_id.wire:
                raise ValueError(foreign_target_text(msg.header.frame_id, self.contract_id))
            cmd = self._mapper.command(msg.name, msg.position, msg.velocity, msg.effort)
        except ValueError as exc:
            self.counters.rejected_targets += 1
            self.get_logger().warning(f"rejected target on {self.params['target_topic']}: {exc}", throttle_duration_sec=1.0)
            with self._sup_lock:
                if self._sup.mode is Mode.POLICY:  # the policy is broken: do not wait for the target to go stale
                    self._sup.fault_now(f"invalid PD target on {self.params['target_topic']}: {exc}", received)
            self._trigger_report()
            return
        computed_at = received  # without a stamp: aged from its arrival
        stamp = Time.from_msg(msg.header.stamp)
        if stamp.nanoseconds > 0:
            taken = time.monotonic()
            age = (self.get_clock().now() - stamp).nanoseconds * 1e-9
            if age < -0.01:
                self.get_logger().warning(
                    f"target header.stamp is {-age:.3f} s in the future (clock skew?); using arrival time",
                    throttle_duration_sec=5.0,
                )
            else:
                computed_at = min(taken - max(age, 0.0), received)
        age_at_arrival = received - computed_at
        previous = self._latest_target
        self._latest_target = (cmd, computed_at, stamp.nanoseconds)
        self.counters.targets += 1
        if previous is not None and received - self._last_target_arrival > LATE_TARGET_GAP_S:
            # Say which side was late: the policy (its stamps are as far apart) or the way here.
            self.get_logger().warning(
                f"PD targets arrived {1e3 * (received - self._last_target_arrival):.1f} ms apart, their stamps "
                f"{1e3 * (self._latest_target[1] - previous[1]):.1f} ms apart; this one "
                f"{1e3 * age_at_arrival:.1f} ms old",
                throttle_duration_sec=1.0)
        self._last_target_arrival = received

    def apply_request(self, req: Request, source: str) -> RequestOutcome:
        """An operator request from a service or the request topic; logged with its outcome."""
        if self._shutdown_until is not None:
            outcome = RequestOutcome(False, f"refused {req.value}: the bridge is shutting down")
        else:
            with self._sup_lock:
                outcome = self._sup.request(req, time.monotonic())
        self.get_logger().info(f"request {req.value} ({source}): {outcome.message}")
        self._report()
        return outcome

    def _on_service(self, req: Request, _request, response):
        outcome = self.apply_request(req, f"service {SUPERVISOR_NS}/{req.value}")
        response.success = outcome.accepted
        response.message = outcome.message
        return response

    def _on_request_topic(self, msg: String) -> None:
        text = msg.data.strip().lower()
        try:
            req = Request(text)
        except ValueError:
            self.get_logger().warning(
                f"unknown request {msg.data!r} on {REQUEST_TOPIC}; known: {', '.join(r.value for r in Request)}"
            )
            return
        self.apply_request(req, f"topic {REQUEST_TOPIC}")

    # ---------------------------------------------------------------------------------------
    # supervisor state and events (executor)

    def _report(self) -> None:
        """Log new supervisor events (one line each) and publish the state snapshot."""
        with self._sup_lock:
            events = self._sup.new_events()
            status = self._sup.status()
        logger = self.get_logger()
        for _t, text in events:
            if text.startswith("FAULT"):
                logger.error(text)
            elif "-> damping" in text:
                logger.warning(text)
            else:
                logger.info(text)
        status["fault_time"] = self._wall(status["fault_time"])
        if status["last_event"] is not None:
            status["last_event"]["time"] = self._wall(status["last_event"]["time"])
        state = self._latest_state
        status["lowstate_age_s"] = None if state is None else round(time.monotonic() - state.stamp, 4)
        status["dry_run"] = self.params["dry_run"]
        status["contract"] = self.contract_id.wire
        status["targets_received"] = self.counters.targets
        status["stamp"] = time.time()
        self._publish_ros(self._pub_state, String(data=json.dumps(status)))

    def _wall(self, t: float | None) -> float | None:
        return None if t is None or not math.isfinite(t) else t + self._epoch_offset

    # ---------------------------------------------------------------------------------------
    # rt/lowcmd (writer thread)

    def _writer_loop(self) -> None:
        priority = self.params["writer_priority"]
        if priority:
            try:  # on Linux this applies to the calling thread only
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
            except (PermissionError, OSError) as exc:
                self.get_logger().warning(
                    f"writer_priority {priority}: cannot use SCHED_FIFO ({exc}); the writer runs with normal priority"
                )
        period = 1.0 / self.params["command_rate_hz"]
        preview_every = max(1, round(self.params["command_rate_hz"] / self.params["preview_rate_hz"]))
        msg = new_lowcmd()
        tick = 0
        deadline = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            self._timing.late_max = max(self._timing.late_max, now - deadline)
            try:
                if not self._tick(now, msg, tick % preview_every == 0):
                    return
            except Exception as exc:  # keep the writer alive; the next tick tries again
                self.get_logger().error(f"lowcmd tick failed: {exc!r}", throttle_duration_sec=1.0)
            work = time.monotonic() - now
            self._timing.work_sum += work
            self._timing.work_max = max(self._timing.work_max, work)
            self._timing.ticks += 1
            tick += 1
            deadline += period
            delay = deadline - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -_MAX_CATCH_UP_PERIODS * period:  # a long stall: skip the missed ticks
                self.counters.overruns += 1
                deadline = time.monotonic()
            # else: a short hiccup; the next ticks run at once until the schedule is met again

    def _tick(self, now: float, msg, preview: bool) -> bool:
        """One writer tick: the supervisor's command for now; False when the shutdown damping is over."""
        if self._shutdown_until is not None and now >= self._shutdown_until:
            return False
        state = self._latest_state
        self._poll_target()
        target = self._latest_target
        with self._sup_lock:
            decision = self._sup.tick(
                now, state, state.stamp if state is not None else None,
                target[0] if target is not None else None, target[1] if target is not None else None,
            )
            events = self._sup.event_count
        if events != self._writer_events_seen:
            self._writer_events_seen = events
            self._trigger_report()
        written = False
        if state is not None:  # else no mode_machine to address the robot with yet: send nothing
            cmd = decision.command
            pack_lowcmd(cmd, state.mode_machine, self.params["mode_pr"], msg=msg)
            written = self._lowcmd_pub.Write(msg) if self._lowcmd_pub is not None else True
            if written:
                self.counters.lowcmd += 1
            else:
                self.counters.write_failures += 1
            if self._lowcmd_pub is None and preview:
                self._publish_preview(cmd, state.mode_machine)
        if self._hooks is not None:
            self._hooks.command_written(time.monotonic(), target[2] if target is not None else 0,
                                        decision.mode is Mode.POLICY, written)
        return True

    def _trigger_report(self) -> None:
        try:
            self._report_guard.trigger()
        except Exception:  # the context is gone during shutdown: nobody left to tell
            pass

    def _publish_preview(self, cmd: JointCommand, mode_machine: int) -> None:
        js = JointState()
        js.header.stamp = self.get_clock().now().to_msg()
        js.header.frame_id = f"mode_machine={mode_machine}"
        js.name = list(g1.JOINT_NAMES)
        js.position, js.velocity, js.effort = cmd.q.tolist(), cmd.dq.tolist(), cmd.tau.tolist()
        self._publish_ros(self._pub_preview, js)
        gains = Float64MultiArray()
        gains.layout.dim = [
            MultiArrayDimension(label="kp,kd", size=2, stride=2 * g1.NUM_BODY_JOINTS),
            MultiArrayDimension(label="joint", size=g1.NUM_BODY_JOINTS, stride=g1.NUM_BODY_JOINTS),
        ]
        gains.data = cmd.kp.tolist() + cmd.kd.tolist()
        self._publish_ros(self._pub_preview_gains, gains)

    def _publish_ros(self, publisher, msg) -> None:
        """Publish from any thread; once the rclpy context is gone there is no one to tell."""
        try:
            publisher.publish(msg)
        except Exception as exc:
            if rclpy.ok(context=self.context):
                self.get_logger().error(f"publish on {publisher.topic_name} failed: {exc!r}", throttle_duration_sec=1.0)

    # ---------------------------------------------------------------------------------------
    # diagnostics (executor)

    def _on_diagnostics_timer(self) -> None:
        now = time.monotonic()
        c = self.counters
        t0, states0, cmds0 = self._diag_last
        dt = max(now - t0, 1e-6)
        state_rate, cmd_rate = (c.lowstate - states0) / dt, (c.lowcmd - cmds0) / dt
        self._diag_last = (now, c.lowstate, c.lowcmd)
        p = self.params
        with self._sup_lock:
            mode, fault = self._sup.mode.value, self._sup.fault
        message = f"supervisor {mode}" + (f", fault: {fault}" if fault else "")
        level = DiagnosticStatus.ERROR if fault else DiagnosticStatus.OK
        if state_rate > 0:  # /joint_states at state_publish_rate_hz, never below every state under it
            self._publish_every = max(1, int(state_rate // p["state_publish_rate_hz"]))
        if c.lowstate == 0 and c.bad_crc > 0:
            link = crc_refusal_text(c.bad_crc, c.crc_zero, p["network_interface"], p["dds_domain"])
            message, level = link, DiagnosticStatus.ERROR
            if not self._link_warned and now - self._start > p["link_timeout_s"]:
                self._link_warned = True
                self.get_logger().error(link)
        elif c.lowstate == 0 and now - self._start > p["link_timeout_s"]:
            link = dds.no_message_text(dds.LOWSTATE_TOPIC, now - self._start, p["dds_domain"], p["network_interface"])
            message, level = link, DiagnosticStatus.ERROR
            if not self._link_warned:
                self._link_warned = True
                self.get_logger().warning(link)
        elif 0 < state_rate < p["min_lowstate_rate_hz"] and now - self._start > 3.0:
            slow = (f"rt/lowstate arrives at {state_rate:.0f} Hz (a G1 publishes 500 Hz): /joint_states at "
                    f"{state_rate / self._publish_every:.0f} Hz; Unitree's Python simulator publishes once per "
                    f"SIMULATE_DT and holds each command for a whole step (docs/UNITREE_MUJOCO.md)")
            if level == DiagnosticStatus.OK:
                message, level = slow, DiagnosticStatus.WARN
            if not self._slow_warned:
                self._slow_warned = True
                self.get_logger().warning(slow)
        state = self._latest_state
        timing, self._timing = self._timing, _WriterTiming()
        values = {
            "mode": mode,
            "fault": fault or "",
            "dry_run": p["dry_run"],
            "lowstate_rate_hz": f"{state_rate:.1f}",
            "lowcmd_rate_hz": f"{cmd_rate:.1f}",
            "lowstate_count": c.lowstate,
            "lowcmd_count": c.lowcmd,
            "bad_crc_count": c.bad_crc,
            "crc_zero_count": c.crc_zero,
            "joint_states_rate_hz": f"{state_rate / self._publish_every:.1f}",
            "state_errors": c.state_errors,
            "write_failures": c.write_failures,
            "targets": c.targets,
            "rejected_targets": c.rejected_targets,
            "writer_overruns": c.overruns,
            "writer_work_mean_ms": f"{1e3 * timing.work_sum / max(timing.ticks, 1):.3f}",
            "writer_work_max_ms": f"{1e3 * timing.work_max:.3f}",
            "writer_late_max_ms": f"{1e3 * timing.late_max:.3f}",
            "mode_machine": state.mode_machine if state else "none",
            "contract": self.contract_id.wire,
            "network_interface": p["network_interface"],
            "dds_domain": p["dds_domain"],
        }
        status = DiagnosticStatus(
            level=level, name=f"{NODE_NAME}: lowlevel bridge", message=message,
            hardware_id=f"unitree_g1@{p['network_interface']}/domain{p['dds_domain']}",
            values=[KeyValue(key=k, value=str(v)) for k, v in values.items()],
        )
        diag = DiagnosticArray(status=[status])
        diag.header.stamp = self.get_clock().now().to_msg()
        self._pub_diag.publish(diag)

    # ---------------------------------------------------------------------------------------

    def begin_shutdown(self) -> None:
        """From now on the supervisor is latched in damping (sent if any state was ever received)
        for shutdown_damping_s, then the writer stops. Safe to call from any thread, more than once."""
        if self._shutdown_until is None:
            now = time.monotonic()
            with self._sup_lock:
                self._sup.fault_now("shutting down", now)
            self._shutdown_until = now + self.params["shutdown_damping_s"]
            self._trigger_report()

    def destroy_node(self) -> None:
        readers = getattr(self, "_readers", None)
        if readers is not None:
            readers.destroy()
        super().destroy_node()

    def shutdown(self) -> None:
        """begin_shutdown, wait for the damping to end, close the DDS endpoints."""
        self.begin_shutdown()
        self._writer.join(timeout=max(0.0, self._shutdown_until - time.monotonic()) + 1.0)
        self._stop.set()
        self._writer.join(timeout=1.0)
        # The SDK's endpoints are not deleted here: see end_process.
        with self._sup_lock:
            events = self._sup.new_events()
        logger = rclpy.logging.get_logger(NODE_NAME)  # the node's logger may no longer reach /rosout
        for _t, text in events:
            logger.warning(text)


def main(argv=None, hooks: BridgeHooks | None = None) -> int:  # never returns: see end_process
    exit_if_help(argv, "gmt-ros-bridge", NODE_NAME, __doc__, PARAMETERS, "bridge.yaml")
    # A thread waiting for the GIL otherwise waits up to 5 ms: jitter for a 2 ms writer period.
    process_tuning.short_switch_interval()
    # SIGINT/SIGTERM start the damping at once from a thread woken by Python's signal wakeup fd
    # (written by the C-level handler in whichever thread the kernel picked), instead of waiting
    # for the main thread to leave the executor. rclpy's own handlers are not installed.
    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    holder: dict = {}
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)  # the wakeup fd does the work

    def wait_for_signals() -> None:
        while True:
            for number in os.read(wake_read, 16):
                node = holder.get("node")
                if node is not None:
                    node.begin_shutdown()
                word = "already stopping" if stop.is_set() else "stopping"
                rclpy.logging.get_logger(NODE_NAME).info(f"{signal.Signals(number).name}: {word}")
                stop.set()

    threading.Thread(target=wait_for_signals, name="signals", daemon=True).start()
    try:
        node = BridgeNode(hooks=hooks)
    except (ValueError, RuntimeError, FileNotFoundError) as exc:  # configuration, contract, network
        rclpy.logging.get_logger(NODE_NAME).fatal(f"cannot start: {exc}")
        rclpy.try_shutdown()
        end_process(1)
    holder["node"] = node
    process_tuning.freeze_startup_objects()
    if stop.is_set():  # a signal arrived while starting
        node.begin_shutdown()
    try:
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.05)
    finally:
        node.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    end_process(0)


def end_process(code: int) -> None:
    """Exit handlers, then exit without deleting the SDK's DDS entities. The rt/lowstate reader
    calls into Python from CycloneDDS's receive thread; deleting it (explicitly or in interpreter
    finalisation) while a delivery waits for the GIL can deadlock: seen as a bridge that damped
    on SIGTERM but never exited. The robot sees the bridge leave when its lease ends."""
    import atexit

    atexit._run_exitfuncs()  # e.g. the benchmark's recorder
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
