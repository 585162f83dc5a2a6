"""`gmt-ros faults`: the fault-injection suite. Every fault runs on the sim2sim node graph as real
processes (sim, bridge, policy, player) with real DDS on loopback, and must end in damping (or a
refusal) decided by the bridge's safety supervisor, with no out-of-limit command reaching the robot.

    gmt-ros faults --json OUT [--short] [--only NAME ...] [--motion CLIP] [--keep-logs DIR]
                   [--domain N] [--ros-domain N] [--retries N] [--realtime]

docs/FAULTS.md lists the faults, how each is injected and measured, and the figures. In brief:

- Each run is one ``Sim2SimSession`` (gmt_ros.tools.sim2sim_run): nodes up, sim on its gantry,
  supervisor walked to ``policy``, gantry released; then the suite plays ``--motion`` and, after
  ``track_s`` of tracking (3 s, ``--short`` 1 s), injects the fault, waits for the supervisor's
  reaction, lets the robot receive damping for ``OBSERVE_AFTER_S``, and stops everything (the sim
  first, so it writes its report and trace). Start-up faults run only the bridge and the sim.
  Malformed motion windows end in a refusal and leave the graph tracking, so their run goes on to
  a second fault.
- Injection: in the sim (``sim2sim.fault_injection``, ``--fault SPEC`` at a fixed sim time, or
  ``--mode-machine``), by signals to a node (``ProcessGraph.kill``), through the policy node's
  test-only ``debug_fault`` parameter (set at run time over /gmt_policy/set_parameters), or by
  publishing on /gmt/motion_target from this process.
- Reference time (when detection became possible) per fault: the last rt/lowstate the sim wrote
  before a state-link fault (sim report), the newest PD target's header.stamp before the policy
  died, the stamp of the first corrupted target, the first rt/lowstate carrying the e-stop
  buttons, the moment the fall criterion was crossed (from the sim's trace), the SIGSTOP of the
  player. Then ``detection_ms`` = the supervisor's fault_time (state topic) - reference, and
  ``damping_at_robot_ms`` = the sim's first accepted damping command (trace event) - reference,
  checked against the fault's bound.
- Every accepted command at the sim is checked with ``CommandLimits.violations`` (sim report
  ``lowcmd.out_of_limit``) and NaN ones are refused by the sim's decoder (``lowcmd.invalid``):
  both must stay 0 for every fault.

Exit status: 0 when every fault was handled, 1 when one was not (or its run failed), 2 for bad input.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from gmt_ros import graph
from gmt_ros.core.contract import DEFAULT_POLICY
from gmt_ros.tools import UsageError
from gmt_ros.tools import sim2sim_run as s2s
from gmt_ros.tools.process_graph import tail

DEFAULT_MOTION = "twist2/walk_001"  # the shipped TWIST2 policy tracks its own data most reliably in the graph
TRACK_S = {"full": 3.0, "short": 1.0}  # tracking before the fault
PLAYER_BLEND_IN_S = 1.0  # config/motion_player.yaml blend_in_s: the clip plays after this
OBSERVE_AFTER_S = 0.5  # keep the graph running after the supervisor reacted (damping reaches the robot)
FAULT_WAIT_S = 8.0  # wall seconds to wait for a reaction once the fault is due
SIM_FAULT_LEAD_S = 0.3  # sim seconds between "due" and the fault, so the suite is watching
DETECTION_S = 0.040  # the bound: damping within 40 ms of detection being possible
RUN_TIMEOUT_S = 240.0  # a hard wall-clock limit per run (loaded machine: the sim may run at 0.2x)
PUSH_MPS = 4.0  # push@T:V: enough to throw the standing G1 over (tested: see docs/FAULTS.md)
STATE_DELAY = "0.2±0.05"  # every state 150-250 ms late: the first arrives after the 100 ms timeout
MALFORMED_S = 1.0  # malformed windows published for this long, 50 Hz, kinds in turn
# With the player's and the malformed windows both at 50 Hz (one every 10 ms), the policy's depth-2
# queue overwrites a window only if its thread takes none for 20-30 ms; its PD targets (stamped at
# each 20 ms tick) then show a gap of at least this.
QUEUE_OVERRUN_STALL_S = 0.025
# Mean |joint - default pose| over the body while standing after the easing: the policy stands close
# to its default pose, a robot still in the walk's last pose or lying on the floor does not.
STANDING_POSE_TOLERANCE_RAD = 0.1
PLAYER_STALE_WATCH_S = 2.5  # after the policy's easing to standing: the robot must stand, untouched, this long
STARTUP_WAIT_S = 60.0


@dataclass(frozen=True)
class Fault:
    number: int
    name: str
    title: str
    group: str          # fault class, for --short
    expected: str       # "damping" | "refusal"
    cause: str          # regular expression the supervisor's fault (or refusal log) must match
    bound: str          # "state_timeout", "target_timeout", "detection", "window_timeout", "" (none)


FAULTS: tuple[Fault, ...] = (
    Fault(1, "lowstate_stop", "the sim stops publishing rt/lowstate", "state link", "damping",
          r"robot state stale", "state_timeout"),
    Fault(2, "lowstate_delay", f"every rt/lowstate delayed {STATE_DELAY} s (beyond the 0.1 s timeout)",
          "state link", "damping", r"robot state stale", "state_timeout"),
    Fault(3, "state_bad_crc", "rt/lowstate with a wrong CRC (the bridge drops them)", "state link", "damping",
          r"robot state stale", "state_timeout"),
    Fault(4, "policy_kill", "policy process killed (SIGKILL)", "policy", "damping",
          r"PD target stale", "target_timeout"),
    Fault(5, "policy_nan", "policy publishes NaN targets (debug_fault nan)", "policy", "damping",
          r"unsafe command in policy|invalid PD target", "detection"),
    Fault(6, "policy_huge", "policy publishes huge targets (debug_fault huge: raw action 1000)", "policy",
          "damping", r"unsafe command in policy|invalid PD target", "detection"),
    Fault(7, "player_stop", "motion player frozen (SIGSTOP): no new motion windows", "motion target", "safe pose",
          r"motion target stale: none accepted", "window_timeout"),
    Fault(8, "malformed_windows", "malformed motion windows (unknown joint, wrong length, NaN) next to the valid stream",
          "motion target", "refusal", r"refused motion target", ""),
    Fault(9, "push_fall", f"robot pushed over ({PUSH_MPS:g} m/s)", "robot", "damping",
          r"fall detected|joint overspeed|unsafe command in policy: q target", "detection"),
    Fault(10, "estop", "e-stop (remote L1+R1) during tracking", "robot", "damping", r"^e-stop$", "detection"),
    Fault(11, "wrong_mode_machine", "robot reports mode_machine 4 (23-DoF) to the 29-joint TWIST2 contract",
          "start-up", "refusal", r"start-up check failed: robot reports mode_machine 4", ""),
    Fault(12, "dead_waist", "robot reports no data on waist roll/pitch (slots 13, 14)", "start-up", "refusal",
          r"start-up check failed: motor slots the policy drives report no live data: waist_roll_joint, waist_pitch_joint",
          ""),
)
BY_NAME = {f.name: f for f in FAULTS}

# One run per entry (a fresh graph each); malformed windows leave the graph tracking, so a second
# fault follows in the same run. --short covers every class with fewer runs.
RUNS = {
    "full": (("lowstate_stop",), ("lowstate_delay",), ("state_bad_crc",), ("malformed_windows", "policy_kill"),
             ("policy_nan",), ("policy_huge",), ("player_stop",), ("push_fall",), ("estop",),
             ("wrong_mode_machine",), ("dead_waist",)),
    "short": (("malformed_windows", "policy_nan"), ("state_bad_crc",), ("estop",), ("wrong_mode_machine",)),
}
SIM_SIDE = {"lowstate_stop", "lowstate_delay", "state_bad_crc", "push_fall", "estop"}
STARTUP = {"wrong_mode_machine", "dead_waist"}


class FaultRunError(RuntimeError):
    """A run that could not be carried out as planned (a node died, the robot faulted before the
    injection, ...): not a verdict on the fault."""


def plan_runs(mode: str, only=None) -> list[tuple[str, ...]]:
    """The runs for ``mode`` ("full"/"short"), restricted to ``only`` (fault names) if given;
    a chained run whose partner is not selected runs its selected fault alone."""
    if only:
        unknown = [n for n in only if n not in BY_NAME]
        if unknown:
            raise UsageError(f"unknown fault(s) {unknown}; known: {', '.join(BY_NAME)}")
        runs = []
        for run in RUNS["full"]:
            kept = tuple(n for n in run if n in only)
            if kept:
                runs.append(kept)
        return runs
    return list(RUNS[mode])


def node_settings() -> dict:
    """The bridge's and policy's timeouts as config/*.yaml sets them (what the graph runs with)."""
    def params(spec):
        data = yaml.safe_load(graph.config_path(spec).read_text())
        return data[spec.node_name]["ros__parameters"]

    bridge, policy = params(graph.BRIDGE), params(graph.POLICY)
    return {"state_timeout_s": float(bridge["state_timeout_s"]), "target_timeout_s": float(bridge["target_timeout_s"]),
            "window_max_age_s": float(policy["window_max_age_s"]), "window_timeout_s": float(policy["window_timeout_s"]),
            "stale_blend_s": float(policy["stale_blend_s"]), "fall_tilt_rad": float(bridge["fall_tilt_rad"]),
            "fall_height_m": float(bridge["fall_height_m"]), "gross_margin_rad": float(bridge["gross_margin_rad"])}


def player_window_s(overrides: dict) -> float:
    """Seconds of motion in each of the player's windows: the runner's override, else config/motion_player.yaml."""
    if "window_s" in overrides:
        return float(overrides["window_s"])
    data = yaml.safe_load(graph.config_path(graph.PLAYER).read_text())
    return float(data[graph.PLAYER.node_name]["ros__parameters"]["window_s"])


def bound_s(fault: Fault, settings: dict) -> float | None:
    """The time allowed from the reference to the first damping command at the robot (for the
    frozen player: to the policy's switch to the standing pose)."""
    return {
        "state_timeout": settings["state_timeout_s"] + DETECTION_S,
        "target_timeout": settings["target_timeout_s"] + DETECTION_S,
        "window_timeout": settings["window_timeout_s"] + DETECTION_S,
        "detection": DETECTION_S,
    }.get(fault.bound)


# ------------------------------------------------------------------------------------------------
# What this process adds to the runner's observer


class Probe:
    """Subscriptions and clients on the session observer's node: PD targets with their stamps
    (corrupted ones flagged; finite ones beyond a joint limit by more than the supervisor's gross
    margin listed apart), the policy's parameter service, a motion-target publisher."""

    def __init__(self, observer, gross_margin_rad: float):
        from rcl_interfaces.srv import SetParameters
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import JointState
        from trajectory_msgs.msg import JointTrajectory

        self.observer = observer
        self.lock = threading.Lock()
        self.targets: list[tuple[float, float, bool]] = []  # (receipt, header stamp, corrupted)
        self.gross: list[tuple[float, float, str]] = []  # (receipt, stamp, joint) of targets the limits refuse
        self._slots: tuple[tuple, np.ndarray] | None = None
        self._margin = float(gross_margin_rad)  # the bridge's, as the graph runs it
        node = observer.node
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        node.create_subscription(JointState, "/gmt/joint_targets", self._on_target, reliable)
        self.window_pub = node.create_publisher(JointTrajectory, "/gmt/motion_target", reliable)
        self.param_client = node.create_client(SetParameters, "/gmt_policy/set_parameters")

    def _on_target(self, msg) -> None:
        now = time.time()
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        q = np.asarray(msg.position, dtype=np.float64)
        corrupted = bool(q.size and (not np.all(np.isfinite(q)) or np.max(np.abs(q)) > 100.0))
        gross = None if corrupted else self._gross_joint(tuple(msg.name), q)
        with self.lock:
            self.targets.append((now, stamp, corrupted))
            if gross:
                self.gross.append((now, stamp, gross))

    def _gross_joint(self, names: tuple, q: np.ndarray) -> str | None:
        """The first joint whose target is beyond its limit by more than the bridge's gross margin."""
        from gmt_ros.core import g1

        if self._slots is None or self._slots[0] != names:
            if any(n not in g1.SLOT_OF for n in names) or len(names) != q.size:
                return None
            self._slots = (names, np.array([g1.SLOT_OF[n] for n in names]))
        slots = self._slots[1]
        excess = np.maximum(g1.Q_MIN[slots] - q, q - g1.Q_MAX[slots])
        i = int(np.argmax(excess))
        return names[i] if excess[i] > self._margin else None

    def snapshot(self) -> list[tuple[float, float, bool]]:
        with self.lock:
            return list(self.targets)

    def gross_targets(self) -> list[tuple[float, float, str]]:
        with self.lock:
            return list(self.gross)

    def set_policy_parameter(self, name: str, value: str, timeout_s: float = 10.0) -> None:
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter

        if not self.param_client.wait_for_service(timeout_sec=timeout_s):
            raise FaultRunError("the policy's /gmt_policy/set_parameters service is not available")
        request = SetParameters.Request(parameters=[Parameter(name, Parameter.Type.STRING, value).to_parameter_msg()])
        done = threading.Event()
        future = self.param_client.call_async(request)
        future.add_done_callback(lambda _f: done.set())
        if not done.wait(timeout_s):
            raise FaultRunError(f"setting the policy's {name} did not answer within {timeout_s:.0f} s")
        result = future.result().results[0]
        if not result.successful:
            raise FaultRunError(f"the policy refused {name}={value!r}: {result.reason}")


def standing_window(now: float, n_frames: int = 121, dt: float = 0.02):
    """A valid motion window: the default pose standing still from ``now``."""
    from gmt_ros.core import g1
    from gmt_ros.core.frames import MotionFrames, MotionWindow

    n = g1.NUM_BODY_JOINTS
    frames = MotionFrames(root_pos=np.tile([0.0, 0.0, 0.78], (n_frames, 1)),
                          root_quat=np.tile([1.0, 0.0, 0.0, 0.0], (n_frames, 1)),
                          root_lin_vel=np.zeros((n_frames, 3)), root_ang_vel=np.zeros((n_frames, 3)),
                          joint_pos=np.tile(g1.DEFAULT_POSE, (n_frames, 1)), joint_vel=np.zeros((n_frames, n)))
    return MotionWindow(start_time=now, dt=dt, frames=frames, joint_mask=np.ones(n, dtype=bool))


MALFORMED_KINDS = ("unknown_joint", "length_mismatch", "not_finite")


def malformed_window(kind: str, now: float):
    """A JointTrajectory that is valid except for one defect (``kind`` is the decoder's reason code)."""
    from gmt_ros.nodes.window_codec import encode_window

    msg = encode_window(standing_window(now))
    if kind == "unknown_joint":
        i = msg.joint_names.index("waist_roll_joint")
        msg.joint_names[i] = "waist_rol_joint"
    elif kind == "length_mismatch":
        msg.points[3].positions = list(msg.points[3].positions)[:-1]
    elif kind == "not_finite":
        positions = list(msg.points[5].positions)
        positions[-4] = float("nan")
        msg.points[5].positions = positions
    else:
        raise ValueError(f"unknown malformed window kind {kind!r}; known: {', '.join(MALFORMED_KINDS)}")
    return msg


# ------------------------------------------------------------------------------------------------
# One run (a fresh graph), one or two faults


@dataclass
class Injection:
    """What the suite did and saw for one fault, before the sim's report is read."""

    fault: Fault
    start_unix: float | None = None     # when the suite injected / the fault was due
    sim_time_s: float | None = None     # sim-side faults: the sim time it fires at
    reaction: dict | None = None        # the supervisor state carrying the fault
    notes: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)


class FaultRun:
    def __init__(self, names: tuple[str, ...], opt: "SuiteOptions", log_dir: Path, settings: dict):
        self.faults = [BY_NAME[n] for n in names]
        self.opt = opt
        self.log_dir = log_dir
        self.settings = settings
        self.track_s = TRACK_S["short" if opt.short else "full"]
        self.session: s2s.Sim2SimSession | None = None
        self.probe: Probe | None = None
        self.injections: list[Injection] = []
        self.aborted: dict[str, str] = {}  # a chained fault that could not be injected: why
        self.started = time.time()

    # -- set-up ------------------------------------------------------------------------------

    def _session(self) -> s2s.Sim2SimSession:
        options = s2s.Sim2SimOptions(motion=self.opt.motion, policy=self.opt.policy, domain=self.opt.domain,
                                     interface="lo", ros_domain=self.opt.ros_domain, log_dir=self.log_dir,
                                     realtime=self.opt.realtime)
        session = s2s.Sim2SimSession(options)
        sim = session.graph.extra.setdefault("sim", {})
        first = self.faults[0].name
        if first == "wrong_mode_machine":
            sim["mode_machine"] = "4"
        elif first == "dead_waist":
            sim["fault"] = "dead_slots:waist_roll_joint,waist_pitch_joint"
        elif first in SIM_SIDE:
            self.fault_sim_time = session.hold_s + s2s.SETTLE_S + PLAYER_BLEND_IN_S + self.track_s + SIM_FAULT_LEAD_S
            sim["fault"] = self._sim_spec(first, self.fault_sim_time)
        return session

    @staticmethod
    def _sim_spec(name: str, t: float) -> str:
        return {
            "lowstate_stop": f"lowstate_stop@{t:.3f}",
            "lowstate_delay": f"lowstate_delay@{t:.3f}:{STATE_DELAY}",
            "state_bad_crc": f"state_bad_crc@{t:.3f}",
            "push_fall": f"push@{t:.3f}:{PUSH_MPS:g}",
            "estop": f"press@{t:.3f}:L1+R1:1.0",
        }[name]

    # -- the run -----------------------------------------------------------------------------

    def execute(self) -> dict:
        """Run the graph, inject, stop; returns the raw material for ``evaluate``."""
        with self._session() as session:
            self.session = session
            try:
                if self.faults[0].name in STARTUP:
                    self._startup_run()
                else:
                    self._tracking_run()
            finally:
                raw = self._stop_and_collect()
        return raw

    def _tracking_run(self) -> None:
        session = self.session
        session.start()  # nodes, gantry, damping -> ramp -> hold -> policy, release, settle
        margin = session.graph.extra.get("bridge", {}).get("gross_margin_rad", node_settings()["gross_margin_rad"])
        self.probe = Probe(session.observer, float(margin))
        session.observer.publish_command(f"play {session.clip_name}")
        for i, fault in enumerate(self.faults):
            inj = Injection(fault)
            try:
                if fault.name in SIM_SIDE:
                    inj.sim_time_s = self.fault_sim_time
                    self._await_reaction(inj, due=lambda: session.sim_time_lower_bound() >= self.fault_sim_time - 0.5)
                else:
                    self._wait_tracking(self.track_s)
                    self._check_policy_mode(fault)
                    getattr(self, f"_inject_{fault.name}")(inj)
            except (FaultRunError, s2s.Sim2SimError) as exc:
                if i == 0:
                    raise
                self.aborted[fault.name] = str(exc)  # the faults before it were tested: keep them
                break
            self.injections.append(inj)

    def _startup_run(self) -> None:
        session = self.session
        session.observer = s2s.GraphObserver(session.ros_domain)
        session.graph.start("bridge")
        session._wait(lambda: session.supervisor_state() is not None, s2s.NODES_UP_TIMEOUT_S,
                      "no /gmt/supervisor/state from the bridge")
        session.graph.start("sim", ["--hold-start-s", f"{session.hold_s:g}", "--report", str(session.report_path),
                                    "--trace", str(session.trace_path)])
        inj = Injection(self.faults[0], start_unix=time.time())
        self.injections.append(inj)
        state = session._wait(lambda: (lambda s: s if s and s.get("startup_checked") else None)(session.supervisor_state()),
                              STARTUP_WAIT_S, "the bridge never ran its start-up check")
        inj.reaction = state
        answers = []
        for _ in range(2):  # zero_torque -> damping is allowed; damping -> ramp must be refused
            answers.append(session.observer.call_trigger("/gmt/supervisor/start"))
        clear = session.observer.call_trigger("/gmt/supervisor/clear")
        time.sleep(OBSERVE_AFTER_S)
        inj.extra.update(start_answers=[{"success": ok, "message": m} for ok, m in answers],
                         clear_answer={"success": clear[0], "message": clear[1]},
                         final_state=session.supervisor_state())

    def _wait_tracking(self, seconds: float) -> None:
        """Until the player reports ``seconds`` of the clip played (or the supervisor faulted)."""
        session = self.session
        clip = session.clip_name

        def played():
            for _t, s in reversed(session.observer.snapshot("player")):
                if s.get("clip") == clip and s.get("state") == "playing" and s.get("clip_time", 0.0) >= seconds:
                    return True
            state = session.supervisor_state()
            return bool(state and state.get("fault"))
        session._wait(played, 30.0 + seconds, f"the player never played {seconds:g} s of {clip}")

    def _check_policy_mode(self, fault: Fault) -> None:
        state = self.session.supervisor_state()
        if state.get("fault") or state.get("mode") != "policy":
            raise FaultRunError(f"before injecting {fault.name} the supervisor is in {state.get('mode')} "
                                f"(fault: {state.get('fault')}), not policy")

    def _await_reaction(self, inj: Injection, due=None, wait_s: float = FAULT_WAIT_S) -> None:
        """Wait for a latched fault; ``due()`` true once the fault can have acted (the wait starts then)."""
        session = self.session
        deadline = None if due is not None else time.monotonic() + wait_s
        hard = time.monotonic() + RUN_TIMEOUT_S
        while True:
            state = session.supervisor_state()
            if state and state.get("fault"):
                inj.reaction = state
                break
            session._check_nodes()
            now = time.monotonic()
            if deadline is None and due():
                deadline = now + wait_s
            if (deadline is not None and now > deadline) or now > hard:
                inj.notes.append(f"no supervisor fault within {wait_s:g} s of the fault being due")
                break
            time.sleep(0.01)
        time.sleep(OBSERVE_AFTER_S)

    # -- suite-side injections -----------------------------------------------------------------

    def _inject_policy_kill(self, inj: Injection) -> None:
        inj.start_unix = self.session.kill("policy", signal.SIGKILL)
        self._await_reaction(inj)

    def _inject_policy_nan(self, inj: Injection) -> None:
        inj.start_unix = time.time()
        self.probe.set_policy_parameter("debug_fault", "nan")
        self._await_reaction(inj)

    def _inject_policy_huge(self, inj: Injection) -> None:
        inj.start_unix = time.time()
        self.probe.set_policy_parameter("debug_fault", "huge")
        self._await_reaction(inj)

    def _inject_player_stop(self, inj: Injection) -> None:
        """Freeze the player; the policy should ease the robot to standing and hold it there, with
        no supervisor fault. Watch for the timeout, the easing and a while of standing."""
        settings = node_settings()
        inj.start_unix = self.session.kill("player", signal.SIGSTOP)
        end = time.monotonic() + settings["window_timeout_s"] + settings["stale_blend_s"] + PLAYER_STALE_WATCH_S
        while time.monotonic() < end:
            state = self.session.supervisor_state()
            if state and state.get("fault"):
                inj.reaction = state
                break
            self.session._check_nodes()
            time.sleep(0.02)
        inj.extra["end_unix"] = time.time()
        if inj.reaction is None:
            inj.extra["final_state"] = self.session.supervisor_state()

    def _inject_malformed_windows(self, inj: Injection) -> None:
        from gmt_ros.core.window_check import MotionTargetError
        from gmt_ros.nodes.window_codec import decode_window

        before = self._policy_rejections()
        inj.start_unix = time.time()
        published = dict.fromkeys(MALFORMED_KINDS, 0)
        checked = {}
        k = 0
        while time.time() < inj.start_unix + MALFORMED_S:
            kind = MALFORMED_KINDS[k % len(MALFORMED_KINDS)]
            msg = malformed_window(kind, time.time())
            if kind not in checked:  # the defect is what the decoder names, nothing else
                try:
                    decode_window(msg, dt=0.02)
                    checked[kind] = "accepted"
                except MotionTargetError as exc:
                    checked[kind] = exc.reason
            self.probe.window_pub.publish(msg)
            published[kind] += 1
            k += 1
            time.sleep(0.02)
        inj.extra["end_unix"] = time.time()
        time.sleep(1.2)  # the policy's diagnostics come at 1 Hz
        state = self.session.supervisor_state()
        inj.reaction = state if state.get("fault") else None
        inj.extra.update(published=published, decoder_reasons=checked, rejected_before=before,
                         rejected_after=self._policy_rejections(), mode_after=state.get("mode"),
                         fault_after=state.get("fault"))

    def _policy_rejections(self) -> int | None:
        diag = self.session.observer.snapshot("diagnostics").get("gmt_policy")
        try:
            return int(diag[2]["rejected_windows"]) if diag else None
        except (KeyError, ValueError):
            return None

    # -- tear-down -----------------------------------------------------------------------------

    def _stop_and_collect(self) -> dict:
        session = self.session
        teardown = time.time()  # log lines after this are the shutdown's (e.g. state stale once the sim stops)
        obs = session.observer
        supervisor = obs.snapshot("supervisor") if obs else []
        latest = obs.snapshot("supervisor_latest") if obs else None
        player = session.graph.processes.get("player")
        if player is not None and player.killed_at is not None and player.running():
            session.graph.kill("player", signal.SIGKILL)  # a SIGSTOPped process ignores SIGINT/SIGTERM
        targets = self.probe.snapshot() if self.probe else []
        gross = self.probe.gross_targets() if self.probe else []
        session.exit_codes = session.graph.stop_all(order=s2s.STOP_ORDER)
        logs = {k: p.log_path for k, p in session.graph.processes.items()}
        sim = json.loads(session.report_path.read_text()) if session.report_path.is_file() else None
        return {"supervisor": supervisor, "supervisor_latest": latest, "targets": targets, "logs": logs,
                "gross_targets": gross,
                "teardown_unix": teardown,
                "sim": sim, "trace_path": session.trace_path if session.trace_path.is_file() else None,
                "exit_codes": session.exit_codes, "ros_domain": session.ros_domain,
                "pids": [p.pid for p in session.graph.processes.values()],
                "load_average": round(os.getloadavg()[0], 2),
                "other_graphs": s2s.other_node_processes({p.pid for p in session.graph.processes.values()})}


# ------------------------------------------------------------------------------------------------
# Verdicts


def _largest_gap(times) -> float:
    """The largest interval between consecutive sorted times (0 for fewer than two)."""
    return float(np.max(np.diff(times))) if len(times) > 1 else 0.0


def _ms(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(1e3 * x, 1)


_ROS_LOG_TIME = re.compile(r"^\[\w+\] \[(\d+\.\d+)\]")  # "[ERROR] [1795317018.935876600] [node]: ..."


def _log_lines(path, pattern: str, limit: int = 5, before: float | None = None) -> list[str]:
    """Lines of a node's log matching ``pattern``; with ``before``, only ROS log lines stamped
    before that wall time."""
    try:
        text = Path(path).read_text(errors="replace")
    except (OSError, TypeError):
        return []
    rx = re.compile(pattern)
    out = []
    for line in text.splitlines():
        if not rx.search(line):
            continue
        stamp = _ROS_LOG_TIME.match(line)
        if before is not None and (stamp is None or float(stamp.group(1)) > before):
            continue
        out.append(line.strip())
    return out[:limit]


def _sim_fault(sim: dict | None, kind: str) -> dict | None:
    rows = ((sim or {}).get("fault_injection") or {}).get("faults") or []
    return next((r for r in rows if r["kind"] == kind), None)


def _fall_crossing(trace, t0: float, settings: dict) -> tuple[float | None, str]:
    """Wall time at which the robot first met the supervisor's fall criteria after ``t0`` (tilt
    from the true pelvis orientation, which is what the sim's IMU reports; pelvis height estimated
    from the IMU and joints as the bridge does), interpolated between the 50 Hz trace rows."""
    from gmt_ros.core.height_estimate import PelvisHeightEstimator
    from gmt_ros.core.state import RobotState

    rows = np.flatnonzero(trace.unix_time >= t0 - 0.05)
    if rows.size < 2:
        return None, "no trace rows after the push"
    q = trace.root_quat[rows]
    tilt = np.arccos(np.clip(1.0 - 2.0 * (q[:, 1] ** 2 + q[:, 2] ** 2) / np.sum(q * q, axis=1), -1.0, 1.0))
    estimate = PelvisHeightEstimator()
    zeros = np.zeros(29)
    height = np.array([estimate(RobotState(stamp=0.0, joint_pos=trace.joint_pos[r], joint_vel=zeros,
                                           imu_quat=trace.root_quat[r], imu_gyro=np.zeros(3))) for r in rows])
    times = trace.unix_time[rows]

    def crossing(values, limit, above):
        over = values > limit if above else values < limit
        hit = np.flatnonzero(over)
        if hit.size == 0:
            return None
        i = int(hit[0])
        if i == 0:
            return float(times[0])
        a, b = values[i - 1], values[i]
        u = (limit - a) / (b - a) if b != a else 1.0
        return float(times[i - 1] + u * (times[i] - times[i - 1]))

    found = [(t, what) for t, what in ((crossing(tilt, settings["fall_tilt_rad"], True), "tilt"),
                                       (crossing(height, settings["fall_height_m"], False), "pelvis height estimate"))
             if t is not None]
    return min(found) if found else (None, "the robot never met a fall criterion")


def evaluate(inj: Injection, raw: dict, settings: dict) -> dict:
    """The verdict on one fault from what the run recorded."""
    from sim2sim.trace import DAMPING, PD, SimTrace

    fault = inj.fault
    sim = raw["sim"] or {}
    lowcmd = sim.get("lowcmd", {})
    trace = SimTrace.load(raw["trace_path"]) if raw.get("trace_path") else None
    reaction = inj.reaction or {}
    notes = list(inj.notes)
    out = {"number": fault.number, "name": fault.name, "title": fault.title, "group": fault.group,
           "expected": fault.expected}

    # Reference: when detection became possible.
    reference, ref_what = None, ""
    if fault.name in ("lowstate_stop", "lowstate_delay", "state_bad_crc"):
        row = _sim_fault(sim, fault.name)
        if row and row["fired"]:
            reference, ref_what = row["last_state_before_unix_time"], "the last rt/lowstate the sim wrote before the fault"
            inj.start_unix = row["fired_unix_time"]
    elif fault.name == "estop":
        row = _sim_fault(sim, "press")
        if row and row["fired"]:
            reference, ref_what = row["first_state_after_unix_time"], "the first rt/lowstate carrying L1+R1"
            inj.start_unix = row["fired_unix_time"]
    elif fault.name == "push_fall":
        row = _sim_fault(sim, "push")
        if row and row["fired"] and trace is not None:
            inj.start_unix = row["fired_unix_time"]
            crossing, criterion = _fall_crossing(trace, inj.start_unix, settings)
            out["push_to_fall_criterion_ms"] = _ms(crossing - inj.start_unix) if crossing else None
            # The policy fights the push; its targets may go past the command limits' gross margin
            # (a fault) before the robot tips over far enough for the fall detector.
            gross = [(s, j) for _r, s, j in raw.get("gross_targets", []) if s >= inj.start_unix]
            out["via_fall_detection"] = not ("unsafe command" in (reaction.get("fault") or "") and gross)
            if out["via_fall_detection"]:
                reference = crossing
                ref_what = f"the robot crossing the fall criterion ({criterion}), interpolated in the sim's 50 Hz trace"
            else:
                reference = gross[0][0]
                ref_what = (f"header.stamp of the policy's first target past a joint limit by more than the gross "
                            f"margin after the push ({gross[0][1]})")
    elif fault.name == "policy_kill":
        stamps = [s for _r, s, _c in raw["targets"]]
        if stamps:
            reference, ref_what = max(stamps), "header.stamp of the last PD target the policy published"
    elif fault.name in ("policy_nan", "policy_huge"):
        bad = [s for _r, s, c in raw["targets"] if c]
        if bad:
            reference, ref_what = min(bad), "header.stamp of the first corrupted PD target"
    elif fault.name == "player_stop":
        # The player's last window arrived before the SIGSTOP: the policy's window_timeout_s runs out
        # at the latest that long after it.
        reference, ref_what = inj.start_unix, "the SIGSTOP of the player"

    out["injected_unix"] = inj.start_unix
    out["reference"] = ref_what or None
    out["reference_unix"] = reference

    # The supervisor's reaction.
    fault_msg = reaction.get("fault")
    fault_time = reaction.get("fault_time")
    out["supervisor_fault"] = fault_msg
    out["supervisor_fault_unix"] = fault_time
    out["supervisor_modes"] = _mode_changes(raw["supervisor"], raw.get("t0", 0.0))
    damping_at_robot = None
    pd_after_damping = False
    if trace is not None and reference is not None:
        damping_at_robot = trace.first_command_after(DAMPING, reference)
        if damping_at_robot is not None:
            later = (trace.event_kind == PD) & (trace.event_unix_time > damping_at_robot)
            pd_after_damping = bool(np.any(later))
    out["detection_ms"] = _ms(fault_time - reference) if fault_time and reference else None
    age = re.match(r"robot state stale \(([\d.]+) ms", fault_msg or "")
    if age and out["detection_ms"] is not None:
        # The bridge ages a state from when its listener took it: the rest of the detection time is
        # how late that was after the sim wrote it (DDS + the bridge's listener thread).
        out["bridge_state_take_delay_ms"] = round(out["detection_ms"] - float(age.group(1)), 1)
    out["damping_at_robot_ms"] = _ms(damping_at_robot - reference) if damping_at_robot and reference else None
    limit = bound_s(fault, settings)
    out["bound_ms"] = _ms(limit)

    # Commands that reached the robot.
    out["out_of_limit_commands"] = lowcmd.get("out_of_limit")
    out["out_of_limit_first"] = lowcmd.get("out_of_limit_first", [])
    out["invalid_commands_at_robot"] = lowcmd.get("invalid")
    out["bad_crc_commands_at_robot"] = lowcmd.get("bad_crc")

    bridge_log, policy_log = raw["logs"].get("bridge"), raw["logs"].get("policy")
    checks = {"commands_within_limits": lowcmd.get("out_of_limit") == 0 and lowcmd.get("invalid") == 0}
    if fault.expected == "safe pose":
        _evaluate_safe_pose(inj, raw, settings, trace, reference, limit, checks, out, notes, policy_log)
    elif fault.expected == "damping":
        cause_lines = _log_lines(bridge_log, r"FAULT: ", before=raw.get("teardown_unix"))
        out["cause_log_line"] = cause_lines[0] if cause_lines else None
        if reference is None and fault_msg:
            raise FaultRunError(f"{fault.name} was never injected: the supervisor faulted first ({fault_msg})")
        # A push is detected when the robot tips over; the fall criterion read from the 50 Hz trace
        # is an estimate of that moment, so only the push itself bounds the fault time from below.
        earliest = inj.start_unix if fault.name == "push_fall" else reference
        if earliest is not None and fault_time is not None and fault_time < earliest - 0.002:
            raise FaultRunError(f"{fault.name}: the supervisor faulted ({fault_msg}) "
                                f"{_ms(earliest - fault_time)} ms before the fault could be detected")
        if fault_msg and not re.search(fault.cause, fault_msg):
            # Another fault won the race (on a starved machine the policy can lose the robot on its
            # own): this run says nothing about the injected fault.
            gross = [j for _r, s, j in raw.get("gross_targets", []) if earliest and s >= earliest - 1.0]
            raise FaultRunError(f"{fault.name}: the supervisor latched another fault "
                                f"{_ms(fault_time - earliest) if fault_time and earliest else '?'} ms after the "
                                f"reference: {fault_msg}" + (f" (the policy's targets went past the gross margin at "
                                                             f"{gross[0]})" if gross else ""))
        valid_before = _policy_until(raw["supervisor"], earliest) if earliest else None
        if valid_before is False:
            raise FaultRunError(f"{fault.name}: the supervisor left policy mode before the fault could act "
                                f"(modes: {out['supervisor_modes']})")
        checks.update({
            "fault_injected": reference is not None,
            "supervisor_damping": bool(fault_msg) and reaction.get("mode") == "damping",
            "cause_named": bool(fault_msg and re.search(fault.cause, fault_msg)) and bool(cause_lines),
            "damping_reached_robot": damping_at_robot is not None,
            "no_pd_after_damping": not pd_after_damping,
        })
        within = (damping_at_robot is not None and reference is not None and limit is not None
                  and damping_at_robot - reference <= limit)
        out["within_bound"] = within
        if limit is not None and damping_at_robot is not None and not within:
            notes.append(f"damping reached the robot {_ms(damping_at_robot - reference)} ms after the reference, "
                         f"{_ms(damping_at_robot - reference - limit)} ms over the {_ms(limit)} ms bound")
        out["observed"] = "damping" if checks["supervisor_damping"] else (
            f"no damping (supervisor in {(raw['supervisor_latest'] or {}).get('mode')})")
        if fault.name == "push_fall" and fault_msg:
            out["observed"] += (" by the fall detector" if out.get("via_fall_detection") else
                                " by the command limits (the policy's push-recovery targets), before the fall detector")
    elif fault.name == "malformed_windows":
        lines = _log_lines(policy_log, r"refused motion target \(", limit=20)
        named = {kind: any(f"({kind})" in line for line in lines) for kind in MALFORMED_KINDS}
        before, after = inj.extra.get("rejected_before"), inj.extra.get("rejected_after")
        n_pub = sum(inj.extra.get("published", {}).values())
        t0, t1 = inj.start_unix, inj.extra.get("end_unix", inj.start_unix)
        flowing = [r for r, _s, c in raw["targets"] if t0 <= r <= t1 + 0.5 and not c]
        fell = trace.fell_between(t0, t1 + 0.5)[0] if trace is not None else None
        if inj.extra.get("fault_after") and before is not None and after is not None and after - before >= n_pub:
            # Every malformed window was refused, so they cannot have caused it: a disturbed run.
            raise FaultRunError(f"malformed_windows: the supervisor latched a fault while they were refused: "
                                f"{inj.extra['fault_after']}")
        refused = (after - before) if before is not None and after is not None else None
        unseen = max(0, n_pub - refused) if refused is not None else None
        # The policy's motion-target queue is reliable, depth 2 (each window replaces the last): when its
        # thread stalls, older windows are overwritten before it decodes them. A window it never took
        # was never used; the check is that windows went unseen only across such a stall.
        stall_s = _largest_gap(sorted(s for _r, s, c in raw["targets"] if t0 - 0.1 <= s <= t1 + 0.1 and not c))
        checks.update({
            "decoder_names_each_defect": inj.extra.get("decoder_reasons") == {k: k for k in MALFORMED_KINDS},
            "each_refusal_logged": all(named.values()),
            "all_refused": unseen is not None and (unseen == 0 or stall_s >= QUEUE_OVERRUN_STALL_S),
            "no_supervisor_fault": inj.extra.get("fault_after") is None and inj.extra.get("mode_after") == "policy",
            "kept_tracking": len(flowing) >= 0.8 * 50 * (t1 + 0.5 - t0) and fell is False,
        })
        out.update(cause_log_line=lines[0] if lines else None, refusal_log_lines=lines[:6],
                   windows_published=inj.extra.get("published"), windows_refused=refused,
                   windows_unseen=unseen, policy_stall_ms=_ms(stall_s),
                   targets_during=len(flowing), fell_during=fell, within_bound=None,
                   observed="refusal; the robot kept tracking the valid stream" if all(checks.values()) else "see checks")
    else:  # start-up refusals
        extra = inj.extra
        startup_error = (reaction or {}).get("startup_error")
        answers = extra.get("start_answers", [])
        lines = [line for line in _log_lines(bridge_log, r"start-up check failed") if "FAULT" in line]
        no_pd = trace is not None and not bool(np.any(trace.event_kind == PD))
        checks.update({
            "start_up_error_named": bool(startup_error and re.search(fault.cause, startup_error)),
            "start_refused": len(answers) == 2 and answers[1]["success"] is False
                             and "start-up check failed" in answers[1]["message"],
            "clear_refused": extra.get("clear_answer", {}).get("success") is False,
            "stays_damping": (extra.get("final_state") or {}).get("mode") == "damping",
            "no_pd_command_at_robot": no_pd,
            "cause_logged": bool(lines),
        })
        out.update(startup_error=startup_error, start_answers=answers, clear_answer=extra.get("clear_answer"),
                   cause_log_line=lines[0] if lines else None, within_bound=None,
                   observed="start refused, damping" if checks["start_refused"] and checks["stays_damping"] else "see checks")
    out["checks"] = checks
    out["handled"] = all(checks.values()) and out.get("within_bound") is not False
    out["supervisor_clip"] = (raw.get("supervisor_latest") or {}).get("clip")  # clipped joint-ticks, per reason
    out["sim"] = {"real_time_factor": sim.get("real_time_factor"), "overruns": (sim.get("pacing") or {}).get("overruns"),
                  "max_lag_ms": (sim.get("pacing") or {}).get("max_lag_ms"), "fell": (sim.get("robot") or {}).get("fell")}
    out["notes"] = notes
    return out


def _evaluate_safe_pose(inj: Injection, raw: dict, settings: dict, trace, reference, limit, checks: dict, out: dict,
                        notes: list, policy_log) -> None:
    """A frozen motion producer: the policy says so, eases the robot to standing and keeps it
    there under the policy (no supervisor fault, targets flowing, upright, near the standing pose)."""
    from gmt_ros.core import g1

    fault_msg = (inj.reaction or {}).get("fault")
    if fault_msg and reference is not None and (inj.reaction or {}).get("fault_time", math.inf) < reference + limit:
        # Before the timeout the last window still drove the robot: the frozen player is not the cause.
        raise FaultRunError(f"player_stop: the supervisor latched a fault before the window timeout: {fault_msg}")
    lines = _log_lines(policy_log, inj.fault.cause, limit=3)
    stamp = _ROS_LOG_TIME.match(lines[0]) if lines else None
    seen = float(stamp.group(1)) if stamp else None
    end = inj.extra.get("end_unix", reference)
    settled_from = (seen or reference or 0.0) + settings["stale_blend_s"]
    flowing = [r for r, _s, c in raw["targets"] if settled_from <= r <= end and not c]
    fell = trace.fell_between(reference, end)[0] if trace is not None and reference is not None else None
    pose_error = None
    if trace is not None:
        rows = np.flatnonzero((trace.unix_time >= settled_from + 0.5) & (trace.unix_time <= end))
        if rows.size:
            pose_error = float(np.mean(np.abs(trace.joint_pos[rows] - g1.DEFAULT_POSE)))
    final = inj.extra.get("final_state") or {}
    checks.update({
        "stale_window_logged": bool(lines),
        "no_supervisor_fault": fault_msg is None and final.get("mode") == "policy",
        "kept_publishing": len(flowing) >= 0.8 * 50 * max(end - settled_from, 0.0) and end > settled_from,
        "upright": fell is False,
        "standing_pose": pose_error is not None and pose_error < STANDING_POSE_TOLERANCE_RAD,
    })
    out["detection_ms"] = _ms(seen - reference) if seen and reference else None
    within = out["detection_ms"] is not None and limit is not None and seen - reference <= limit
    out["within_bound"] = within
    if out["detection_ms"] is not None and not within:
        notes.append(f"the policy switched to the standing pose {out['detection_ms']} ms after the SIGSTOP, over "
                     f"the {_ms(limit)} ms bound")
    out.update(cause_log_line=lines[0] if lines else None, targets_while_standing=len(flowing), fell_during=fell,
               standing_pose_error_rad=None if pose_error is None else round(pose_error, 4),
               observed="eased to the standing pose and held it under the policy" if all(checks.values())
               else "see checks")


def _mode_changes(supervisor, t0: float) -> list:
    return [{"t": round(t - t0, 3), "mode": s.get("mode"), "fault": s.get("fault")} for t, s in supervisor]


def _policy_until(supervisor, t: float) -> bool | None:
    """Whether the supervisor was in policy mode, without a fault, right before wall time ``t``
    (by its own event times); None when the history does not say."""
    last = None
    for _receipt, s in supervisor:
        event_time = (s.get("last_event") or {}).get("time") or _receipt
        if event_time <= t:
            last = s
    if last is None:
        return None
    return last.get("mode") == "policy" and not last.get("fault")


# ------------------------------------------------------------------------------------------------
# The suite


@dataclass
class SuiteOptions:
    json_path: str
    short: bool = False
    only: tuple[str, ...] = ()
    motion: str = DEFAULT_MOTION
    policy: str = DEFAULT_POLICY
    domain: int = 73
    ros_domain: int | None = None
    keep_logs: str | None = None
    retries: int = 1
    realtime: bool = False  # sim2sim's --realtime scheduling (SCHED_FIFO sim, bridge writer; nice nodes)


def run_suite(opt: SuiteOptions, echo=print) -> dict:
    """Every planned run in turn; the report (also written to ``opt.json_path`` after each run, with
    ``complete`` false until the end, so an interrupted suite leaves what it measured)."""
    settings = node_settings()
    runs = plan_runs("short" if opt.short else "full", opt.only)
    base = Path(opt.keep_logs) if opt.keep_logs else Path(tempfile.mkdtemp(prefix="gmt_faults_"))
    base.mkdir(parents=True, exist_ok=True)
    started = time.time()
    results: list[dict] = []
    failures: list[dict] = []  # runs that could not test their fault, with the machine's load at the time

    def report(complete: bool) -> dict:
        ordered = sorted(results, key=lambda r: r["number"])
        out = {
            "suite": "short" if opt.short else "full", "complete": complete, "motion": opt.motion, "policy": opt.policy,
            "realtime": opt.realtime, "settings": settings, "detection_bound_ms": _ms(DETECTION_S),
            "track_s": TRACK_S["short" if opt.short else "full"], "faults": ordered,
            "handled": sum(r["handled"] for r in ordered), "total": len(ordered), "failed_runs": failures,
            "out_of_limit_commands_total": sum(r.get("out_of_limit_commands") or 0 for r in ordered),
            "wall_time_s": round(time.time() - started, 1), "cpus": os.cpu_count(), "logs": str(base),
        }
        out["summary"] = summary_line(out)
        if opt.json_path:
            Path(opt.json_path).parent.mkdir(parents=True, exist_ok=True)
            Path(opt.json_path).write_text(json.dumps(out, indent=2) + "\n")
        return out

    for names in runs:
        results += _run_with_retries(names, opt, base, settings, failures, echo)
        report(complete=False)
    final = report(complete=True)
    if not opt.keep_logs and final["handled"] == final["total"]:
        shutil.rmtree(base, ignore_errors=True)
        final["logs"] = None
        for r in final["faults"]:
            r["logs"] = None
        if opt.json_path:
            Path(opt.json_path).write_text(json.dumps(final, indent=2) + "\n")
    return final


def _run_with_retries(names, opt: SuiteOptions, base: Path, settings: dict, failures: list, echo) -> list[dict]:
    """One run (a fresh graph per attempt) until every fault of ``names`` has a verdict; a fault whose
    run could not test it is tried again in the next attempt (alone, or with its partners still
    pending), and gets a "run failed" entry after the last one."""
    pending = list(names)
    verdicts: list[dict] = []
    errors: dict[str, str] = {}
    for attempt in range(1, opt.retries + 2):
        label = "+".join(pending)
        log_dir = base / f"{label}{'' if attempt == 1 else f'_attempt{attempt}'}"
        run = FaultRun(tuple(pending), opt, log_dir, settings)
        t0 = time.time()
        raw = None
        problems: dict[str, str] = {}
        try:
            raw = run.execute()
            raw["t0"] = t0
        except (FaultRunError, s2s.Sim2SimError) as exc:
            problems = dict.fromkeys(pending, str(exc).splitlines()[0])
        else:
            for inj in run.injections:
                try:
                    v = evaluate(inj, raw, settings)
                except FaultRunError as exc:
                    problems[inj.fault.name] = str(exc).splitlines()[0]
                    continue
                v.update(attempts=attempt, run_wall_s=round(time.time() - t0, 1), logs=str(log_dir),
                         node_pids=raw["pids"], load_average=raw["load_average"], other_graphs=raw["other_graphs"])
                echo("  " + fault_line(v))
                verdicts.append(v)
            problems.update(run.aborted)
            done = {v["name"] for v in verdicts}
            for n in pending:
                if n not in done and n not in problems:
                    problems[n] = "the run ended before injecting it"
        if problems:
            others = s2s.other_node_processes()
            load = round(os.getloadavg()[0], 2)
            for n, why in problems.items():
                echo(f"  {n}: run failed (attempt {attempt}): {why} [load {load}, {len(others)} other node processes]")
                failures.append({"fault": n, "run": label, "attempt": attempt, "error": why, "load_average": load,
                                 "other_node_processes": others,
                                 "supervisor_clip": ((raw or {}).get("supervisor_latest") or {}).get("clip"),
                                 "sim_real_time_factor": ((raw or {}).get("sim") or {}).get("real_time_factor")})
            errors.update(problems)
        pending = [n for n in pending if n in problems]
        if not pending:
            break
    for n in pending:
        f = BY_NAME[n]
        verdicts.append({"number": f.number, "name": n, "title": f.title, "group": f.group, "expected": f.expected,
                         "handled": False, "observed": "run failed", "error": errors[n], "attempts": opt.retries + 1,
                         "logs": str(base)})
    return verdicts


def fault_line(r: dict) -> str:
    if r.get("error"):
        return f"{r['number']:2d} {r['name']}: NOT RUN ({r['error'].splitlines()[0]})"
    timing = ""
    if r.get("damping_at_robot_ms") is not None:
        timing = f", damping at the robot {r['damping_at_robot_ms']} ms (bound {r['bound_ms']} ms)"
    verdict = "handled" if r["handled"] else "NOT HANDLED"
    failed = [k for k, v in r.get("checks", {}).items() if not v]
    return (f"{r['number']:2d} {r['name']}: {verdict}: {r['observed']}{timing}; out-of-limit commands "
            f"{r.get('out_of_limit_commands')}; cause: {r.get('supervisor_fault') or r.get('startup_error') or r.get('cause_log_line')}"
            + (f"; failed checks: {', '.join(failed)}" if failed else "")
            + (f" [{'; '.join(r['notes'])}]" if r.get("notes") else ""))


def summary_line(report: dict) -> str:
    parts = []
    for r in report["faults"]:
        if r.get("damping_at_robot_ms") is not None:
            parts.append(f"{r['name']} {r['damping_at_robot_ms']:g}/{r['bound_ms']:g} ms")
        else:
            parts.append(f"{r['name']} {r.get('observed')}")
    return (f"{report['handled']}/{report['total']} faults handled: {', '.join(parts)}; "
            f"{report['out_of_limit_commands_total']} out-of-limit commands reached the robot; "
            f"{report['wall_time_s']:.0f} s")


# ------------------------------------------------------------------------------------------------
# CLI


def cmd_faults(args) -> int:
    from gmt_ros.adapters import dds

    if not 1 <= args.domain <= dds.MAX_DOMAIN_ID:
        raise UsageError(f"--domain must be a non-zero DDS domain (1..{dds.MAX_DOMAIN_ID}), got {args.domain}")
    if args.retries < 0:
        raise UsageError(f"--retries must be >= 0, got {args.retries}")
    s2s._raise_on_sigterm()
    opt = SuiteOptions(json_path=args.json, short=args.short, only=tuple(args.only or ()), motion=args.motion,
                       policy=args.policy, domain=args.domain, ros_domain=args.ros_domain, keep_logs=args.keep_logs,
                       retries=args.retries, realtime=args.realtime)
    plan_runs("short" if opt.short else "full", opt.only)  # UsageError for unknown names, before anything starts
    s2s.check_options(s2s.Sim2SimOptions(motion=opt.motion, policy=opt.policy, domain=opt.domain))
    report = run_suite(opt, echo=lambda line: print(line, flush=True))  # writes --json after every run
    print(report["summary"], flush=True)
    return 0 if report["handled"] == report["total"] else 1


def register(subparsers) -> None:
    p = subparsers.add_parser("faults", help="fault-injection suite on the sim2sim node graph (docs/FAULTS.md)")
    p.add_argument("--json", required=True, help="write the per-fault report here")
    p.add_argument("--short", action="store_true", help="CI variant: 1 s of tracking before each fault, one run per fault class")
    p.add_argument("--only", nargs="+", metavar="NAME", help=f"run only these faults: {', '.join(BY_NAME)}")
    p.add_argument("--motion", default=DEFAULT_MOTION, help="clip tracked when the fault hits (library name)")
    p.add_argument("--policy", default=DEFAULT_POLICY)
    p.add_argument("--domain", type=int, default=73, help="the robot's DDS domain (non-zero, loopback)")
    p.add_argument("--ros-domain", type=int, default=None, help="ROS_DOMAIN_ID of the graphs (default: $ROS_DOMAIN_ID or picked)")
    p.add_argument("--keep-logs", help="keep every run's logs, sim report and trace under DIR/<run>/")
    p.add_argument("--realtime", action="store_true",
                   help="the graph with sim2sim's real-time scheduling (needs root or CAP_SYS_NICE), as on the robot")
    p.add_argument("--retries", type=int, default=1,
                   help="run again (fresh graph) when a run could not test its fault: a node died, another fault "
                        "came first (default 1)")
    p.set_defaults(func=cmd_faults)

