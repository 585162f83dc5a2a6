"""One run of the fault suite: a fresh sim2sim graph (``Sim2SimSession``), one or two faults
injected by their classes (``catalog``), and what the run recorded for the verdicts."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gmt_ros.core.contract import load_contract
from gmt_ros.nodes.qos import STREAM_QOS, stream_qos
from gmt_ros.tools import sim2sim_run as s2s
from gmt_ros.tools.faults.catalog import BY_NAME
from gmt_ros.tools.faults.model import FaultRunError, Injection
from gmt_ros.tools.graph_observer import GraphObserver

if TYPE_CHECKING:
    from gmt_ros.tools.faults.suite import SuiteOptions

TRACK_S = {"full": 3.0, "short": 1.0}  # tracking before the fault
OBSERVE_AFTER_S = 0.5  # keep the graph running after the supervisor reacted (damping reaches the robot)
FAULT_WAIT_S = 8.0  # wall seconds to wait for a reaction once the fault is due
SIM_FAULT_LEAD_S = 0.3  # sim seconds between "due" and the fault, so the suite is watching
RUN_TIMEOUT_S = 240.0  # a hard wall-clock limit per run (loaded machine: the sim may run at 0.2x)
STARTUP_WAIT_S = 60.0


class Probe:
    """Subscriptions and publishers on the session observer's node: PD targets with their stamps
    (corrupted ones flagged; finite ones beyond a joint limit by more than the supervisor's gross
    margin listed apart), a motion-target publisher and a PD-target publisher (corrupted targets)."""

    def __init__(self, observer, gross_margin_rad: float):
        from sensor_msgs.msg import JointState
        from trajectory_msgs.msg import JointTrajectory

        self._JointState = JointState
        self.observer = observer
        self.lock = threading.Lock()
        self.targets: list[tuple[float, float, bool]] = []  # (receipt, header stamp, corrupted)
        self.gross: list[tuple[float, float, str]] = []  # (receipt, stamp, joint) of targets the limits refuse
        self.latest = None  # the policy's newest target (a valid one)
        self._slots: tuple[tuple, np.ndarray] | None = None
        self._margin = float(gross_margin_rad)  # the bridge's, as the graph runs it
        node = observer.node
        node.create_subscription(JointState, "/gmt/joint_targets", self._on_target, stream_qos(50))
        self.window_pub = node.create_publisher(JointTrajectory, "/gmt/motion_target", STREAM_QOS)
        self.target_pub = node.create_publisher(JointState, "/gmt/joint_targets", STREAM_QOS)

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
            if not corrupted:
                self.latest = msg

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

    def publish_corrupted(self, corrupt) -> bool:
        """Publish a copy of the policy's newest target (its joints and contract identity), stamped
        now, with ``corrupt(positions)`` as positions. False while no target was seen yet."""
        with self.lock:
            latest = self.latest
        if latest is None:
            return False
        msg = self._JointState()
        msg.header.stamp = self.observer.node.get_clock().now().to_msg()
        msg.header.frame_id = latest.header.frame_id
        msg.name = list(latest.name)
        msg.position = corrupt(latest.position)
        msg.velocity, msg.effort = list(latest.velocity), list(latest.effort)
        self.target_pub.publish(msg)
        return True

    def snapshot(self) -> list[tuple[float, float, bool]]:
        with self.lock:
            return list(self.targets)

    def gross_targets(self) -> list[tuple[float, float, str]]:
        with self.lock:
            return list(self.gross)


class FaultRun:
    def __init__(self, names: tuple[str, ...], opt: SuiteOptions, log_dir: Path, settings: dict):
        self.faults = [BY_NAME[n] for n in names]
        self.opt = opt
        self.log_dir = log_dir
        self.settings = settings
        self.contract = load_contract(opt.policy)
        self.track_s = TRACK_S["short" if opt.short else "full"]
        self.session: s2s.Sim2SimSession | None = None
        self.probe: Probe | None = None
        self.injections: list[Injection] = []
        self.aborted: dict[str, str] = {}  # a chained fault that could not be injected: why
        self.started = time.time()
        self.fault_sim_time: float | None = None

    # -- set-up ------------------------------------------------------------------------------

    def _session(self) -> s2s.Sim2SimSession:
        options = s2s.Sim2SimOptions(motion=self.opt.motion, policy=self.opt.policy, domain=self.opt.domain,
                                     interface="lo", ros_domain=self.opt.ros_domain, log_dir=self.log_dir,
                                     realtime=self.opt.realtime)
        session = s2s.Sim2SimSession(options)
        first = self.faults[0]
        if first.sim_side:
            self.fault_sim_time = (session.hold_s + s2s.SETTLE_S + self.settings["player_blend_in_s"] + self.track_s
                                   + SIM_FAULT_LEAD_S)
        session.graph.extra.setdefault("sim", {}).update(first.sim_settings(self.fault_sim_time or 0.0))
        return session

    # -- the run -----------------------------------------------------------------------------

    def execute(self) -> dict:
        """Run the graph, inject, stop; returns the raw material for ``evaluate``."""
        with self._session() as session:
            self.session = session
            try:
                if self.faults[0].startup:
                    self._startup_run()
                else:
                    self._tracking_run()
            finally:
                raw = self._stop_and_collect()
        return raw

    def _tracking_run(self) -> None:
        session = self.session
        session.start()  # nodes, gantry, damping -> ramp -> hold -> policy, release, settle
        margin = session.graph.extra.get("bridge", {}).get("gross_margin_rad", self.settings["gross_margin_rad"])
        self.probe = Probe(session.observer, float(margin))
        session.observer.publish_command(f"play {session.clip_name}")
        for i, fault in enumerate(self.faults):
            inj = Injection(fault)
            try:
                if not fault.sim_side:
                    self._wait_tracking(self.track_s)
                    self._check_policy_mode(fault)
                fault.inject(self, inj)
            except (FaultRunError, s2s.Sim2SimError) as exc:
                if i == 0:
                    raise
                self.aborted[fault.name] = str(exc)  # the faults before it were tested: keep them
                break
            self.injections.append(inj)

    def _startup_run(self) -> None:
        session = self.session
        session.observer = GraphObserver(session.ros_domain)
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
        time.sleep(OBSERVE_AFTER_S)  # the robot keeps receiving damping: what the verdict looks at
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

    def _check_policy_mode(self, fault) -> None:
        state = self.session.supervisor_state()
        if state.get("fault") or state.get("mode") != "policy":
            raise FaultRunError(f"before injecting {fault.name} the supervisor is in {state.get('mode')} "
                                f"(fault: {state.get('fault')}), not policy")

    # -- what the faults' inject hooks use -----------------------------------------------------

    def await_sim_fault(self, inj: Injection) -> None:
        """A fault the simulated robot plays at ``fault_sim_time``: wait for the reaction once it is due."""
        inj.sim_time_s = self.fault_sim_time
        due = self.fault_sim_time - 0.5
        self.await_reaction(inj, due=lambda: self.session.sim_time_lower_bound() >= due)

    def await_reaction(self, inj: Injection, due=None, wait_s: float = FAULT_WAIT_S) -> None:
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
        time.sleep(OBSERVE_AFTER_S)  # damping keeps reaching the robot: what the verdict looks at

    def policy_rejections(self) -> int | None:
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
                "standing_pose": self.contract.command_table.default_pose.tolist(),
                "sim": sim, "trace_path": session.trace_path if session.trace_path.is_file() else None,
                "exit_codes": session.exit_codes, "ros_domain": session.ros_domain,
                "pids": [p.pid for p in session.graph.processes.values()],
                "load_average": round(os.getloadavg()[0], 2),
                "other_graphs": s2s.other_node_processes({p.pid for p in session.graph.processes.values()})}
