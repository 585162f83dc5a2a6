"""gmt_bridge: ROS 2 <-> Unitree G1 low-level DDS (rt/lowstate in, rt/lowcmd out).

Every motor command is decided by the safety supervisor (``gmt_ros.core.supervisor``): zero
torque -> damping -> ramp -> hold -> policy, faults latch into damping. docs/SAFETY.md is the
operator's page (buttons, services, timeouts, start-up checks, dry run).

=============================================  ====================  ==========================
work                                           thread                rate
=============================================  ====================  ==========================
rt/lowstate -> CRC check -> latest state;      SDK listener          robot rate (≈ 500 Hz)
supervisor: state_source (one publisher),
buttons (remote), startup_check (the first
``startup_check_states``); every n-th state on
/joint_states, /imu (``state_publish_rate_hz``),
the remote on /wireless_remote(/joy) (changes
and 10 Hz)
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
never in the writer. Streams in and out are best effort (gmt_ros.nodes.qos: a reliable writer
could hold the SDK listener thread up to 100 ms for a subscriber that has just joined).

The SDK runs CycloneDDS 0.10.2 in this process, so ROS must use Fast DDS: rmw_cyclonedds_cpp
(RMW_IMPLEMENTATION, or the RMW in use) and a second libddsc mapped into the process are refused at
start with what to do (gmt_ros.adapters.dds.check_single_cyclonedds; README, "On a ROS 2 host").
"""
from __future__ import annotations

import functools
import json
import math
import os
import sys
import threading
import time

import numpy as np

from gmt_ros.adapters import dds

dds.exit_if_cyclonedds_rmw("gmt_bridge")  # before rclpy loads the RMW it names (rcl exits 102 without a word)
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.time import Time
from sensor_msgs.msg import JointState
from std_msgs.msg import String
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
from gmt_ros.adapters.motion_switcher import release_motion_service
from gmt_ros.core import g1
from gmt_ros.core.command_limits import CommandLimits
from gmt_ros.core.command_table import TargetMapper
from gmt_ros.core.contract import ContractId, load_contract
from gmt_ros.core.height_estimate import PelvisHeightEstimator
from gmt_ros.core.remote import decode_remote
from gmt_ros.core.supervisor import Mode, Request, RequestOutcome, Supervisor
from gmt_ros.nodes.bridge_diagnostics import CRC_ZERO_HINT, BridgeCounters, BridgeDiagnostics, WriterTiming
from gmt_ros.nodes.bridge_parameters import PARAMETERS, BridgeConfigError, check_parameters
from gmt_ros.nodes.bridge_topics import LowcmdPreview, RobotStateTopics, publish_from_any_thread
from gmt_ros.nodes.gmt_node import GmtNode
from gmt_ros.nodes.qos import STREAM_QOS
from gmt_ros.nodes.run import NodeHelp, run_node_with_shutdown

NODE_NAME = "gmt_bridge"
SUPERVISOR_NS = "/gmt/supervisor"
STATE_TOPIC = f"{SUPERVISOR_NS}/state"
REQUEST_TOPIC = f"{SUPERVISOR_NS}/request"
LATE_TARGET_GAP_S = 0.06  # PD targets further apart than this (3 policy periods) are logged
_MAX_CATCH_UP_PERIODS = 5  # later than this the writer re-anchors its schedule instead of catching up


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


class BridgeNode(GmtNode):
    def __init__(self, hooks: BridgeHooks | None = None, **kwargs):
        super().__init__(NODE_NAME, PARAMETERS, BridgeConfigError, **kwargs)
        self._hooks = hooks
        p = self.params
        config = check_parameters(p)
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
            self.get_logger().info("release_motion_service is false: the robot's built-in motion service is not "
                                   "touched; release it before leaving dry run (remote L2+R2, or see docs/SAFETY.md)")

        self.counters = BridgeCounters()
        self._timing = WriterTiming()
        self._latest_state = None  # RobotState, replaced whole (atomic) by the SDK thread
        self._latest_target = None  # (JointCommand, computed_at on time.monotonic, header stamp in ns)
        self._start = time.monotonic()
        self._epoch_offset = time.time() - self._start  # monotonic -> wall clock, for the state topic
        self._stop = threading.Event()
        self._shutdown_until: float | None = None
        self._writer_events_seen, self._fall_logged = 0, None
        self._startup_live = np.zeros(g1.NUM_MOTOR_SLOTS, bool)
        self._startup_prev, self._startup_seen = None, 0
        self._diagnostics = BridgeDiagnostics(NODE_NAME, p, self._start, self.get_logger())

        self._state_topics = RobotStateTopics(self)
        self._last_target_arrival = 0.0
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._pub_state = self.create_publisher(String, STATE_TOPIC, latched)
        self._pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._preview = LowcmdPreview(self) if p["dry_run"] else None
        # Best effort accepts both reliable and best-effort target publishers. The writer takes the
        # newest target from the DDS reader at each tick (gmt_ros.nodes.polled_topics): a target
        # does not wait for this node's executor, which may be busy or starved of CPU.
        readers = self.polled_topics(f"{NODE_NAME}_target_reader")
        self._targets_in = readers.subscribe(JointState, p["target_topic"], STREAM_QOS)
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
        try:  # before the writer can act on it: a second publisher's state has latched its fault by then
            self._supervise_state(msg, state, remote, now)
        except Exception as exc:
            self.get_logger().error(f"supervisor input from rt/lowstate failed: {exc!r}", throttle_duration_sec=1.0)
        self._latest_state = state
        self.counters.lowstate += 1
        n = self.counters.lowstate
        try:
            if n % self._diagnostics.publish_every == 0:
                self._state_topics.publish_state(state)
            self._state_topics.publish_remote(bytes(msg.wireless_remote), remote, n)
        except Exception as exc:
            if rclpy.ok(context=self.context):
                self.get_logger().error(f"could not republish robot state: {exc!r}", throttle_duration_sec=1.0)
        if self._hooks is not None:
            self._hooks.state_received(now, wall, int(msg.tick))

    def _supervise_state(self, msg, state, remote, now: float) -> None:
        """One publisher, the start-up check over the first states, the remote's buttons (every state)."""
        if self._shutdown_until is not None:
            return
        # All-zero IMU: nothing measured yet (a simulator publishing before its first physics step).
        measured = self._sup.startup_checked or bool(np.any(state.imu_quat))
        if measured and not self._sup.startup_checked:
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
        info = msg.__dict__.get("sample_info")  # set by cyclonedds on a received sample
        with self._sup_lock:  # once per state; a fault here is reported by the writer's next tick
            note = self._sup.state_source(getattr(info, "publication_handle", None), state.tick, now)
            outcomes = self._sup.buttons(remote.buttons, now) if measured else []
        if note:
            self.get_logger().warning(note)
        if outcomes:
            pressed = "+".join(sorted(remote.buttons))
            for outcome in outcomes:
                self.get_logger().info(f"remote {pressed}: {outcome.message}")
            self._trigger_report()

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
            events, status, fallen = self._sup.new_events(), self._sup.status(), self._sup.fall_state
        logger = self.get_logger()
        for _t, text in events:
            if text.startswith("FAULT"):
                logger.error(text)
            elif "-> damping" in text:
                logger.warning(text)
            else:
                logger.info(text)
        if fallen is not None and fallen is not self._fall_logged:  # after its FAULT line, off the writer thread
            self._fall_logged = fallen
            logger.warning(BridgeDiagnostics.fall_state_text(fallen))
        status["fault_time"] = self._wall(status["fault_time"])
        if status["last_event"] is not None:
            status["last_event"]["time"] = self._wall(status["last_event"]["time"])
        state = self._latest_state
        status["lowstate_age_s"] = None if state is None else round(time.monotonic() - state.stamp, 4)
        status["dry_run"] = self.params["dry_run"]
        status["contract"] = self.contract_id.wire
        status["targets_received"] = self.counters.targets
        status["stamp"] = time.time()
        publish_from_any_thread(self, self._pub_state, String(data=json.dumps(status)))

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
        msg, tick = new_lowcmd(), 0
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
            if self._preview is not None and preview:
                self._preview.publish(cmd, state.mode_machine)
        if self._hooks is not None:
            self._hooks.command_written(time.monotonic(), target[2] if target is not None else 0,
                                        decision.mode is Mode.POLICY, written)
        return True

    def _trigger_report(self) -> None:
        try:
            self._report_guard.trigger()
        except Exception:  # the context is gone during shutdown: nobody left to tell
            pass

    # ---------------------------------------------------------------------------------------
    # diagnostics (executor)

    def _on_diagnostics_timer(self) -> None:
        with self._sup_lock:
            mode, fault = self._sup.mode.value, self._sup.fault
        state = self._latest_state
        timing, self._timing = self._timing, WriterTiming()
        status = self._diagnostics.status(time.monotonic(), self.counters, timing, mode, fault,
                                          state.mode_machine if state else "none", self.contract_id.wire)
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


def main(argv=None, hooks: BridgeHooks | None = None) -> int:  # never returns: see run.end_process
    return run_node_with_shutdown(lambda: BridgeNode(hooks=hooks), NODE_NAME, argv,
                                  help=NodeHelp("gmt-ros-bridge", __doc__, PARAMETERS, "bridge.yaml"))


if __name__ == "__main__":
    sys.exit(main())
