"""`gmt-ros sim2sim` and `gmt-ros sim2sim-all`: the launch file's node graph as separate processes
(no ROS install), one clip played through it, measured like `gmt-ros eval`.

    gmt-ros sim2sim --motion NAME [--policy NAME] [--seconds S] [--report OUT.json] [--domain N]
                    [--interface lo] [--ros-domain N] [--ramp-time-s 1.5] [--keep-logs DIR]
                    [--realtime] [--launch-settings]
    gmt-ros sim2sim-all [same options but --motion/--seconds/--report] [--json OUT] [--markdown OUT]

What a run does (``Sim2SimSession``), every step checked, every process stopped in a ``finally``:

1. Environment of every node: ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``, ``ROS_DOMAIN_ID`` (the
   caller's, else a non-zero one picked here), the robot's DDS on ``--interface`` (loopback only)
   in ``--domain`` (non-zero). This process joins the same ROS domain with its own node (the
   observer): supervisor state, player status, motion-target windows, joint targets, diagnostics.
2. bridge, policy and player start (``gmt_ros.tools.process_graph``) with the YAML the launch file
   uses, plus ``ramp_time_s`` for the bridge and, unless ``--launch-settings``, the CPU-saving
   settings of ``lighter_settings``; they are up when the supervisor state, a policy diagnostic
   and the player status have been seen.
3. The simulated robot starts on a gantry (``hold_s`` of sim time). Once the bridge has the
   robot's state, its start-up check passed and ``WARMUP_S`` more have passed, the runner walks
   the supervisor through zero torque -> damping -> ramp (``ramp_time_s``) -> hold -> policy with
   its Trigger services (/gmt/supervisor/start, start, policy), each step only after the state
   topic shows the previous one, the hand-over only while the policy is publishing. Services
   rather than a scripted remote: the remote script runs on sim time, and a loaded machine runs
   the sim slower than the wall clock by an unknown factor, so presses cannot be matched to the
   supervisor's progress; the services are event-driven. The sim's trace then proves the
   supervisor was in ``policy`` (and the motors on PD commands) before the release.
4. The release is known from the bridge's /diagnostics ``lowstate_count``: the sim writes one
   rt/lowstate per 2 ms of sim time, so the count is a lower bound of the sim clock (drops only
   make the wait longer). ``SETTLE_S`` of sim time later, ``play NAME`` on /gmt/player/command;
   the player's status is followed until the clip ends (or ``--seconds`` of it have played).
   A supervisor fault before that ends the run early: the report says why (``aborted``).
5. Stop: the sim first (it writes its report and trace), then player, policy, bridge (SIGINT, then
   SIGTERM, then SIGKILL to the process group).

Measurements (the report):

- Tracking errors as ``gmt-ros eval`` computes them (``sim2sim.metrics``), over the clip's
  playing time (not the blends): the reference is what the graph was asked to track, recorded
  here from /gmt/motion_target: the first two frames of each window are the reference at the
  window's stamp and 20 ms later (the player stamps with the system clock). The sim records the
  true robot state at 50 Hz with time.time() (``sim2sim.trace``); each trace row is compared with
  the reference interpolated to the row's wall time (``sim2sim.trace.tracking_errors``).
- fell: the fall rule of ``sim2sim.metrics`` on the trace rows of the scored interval.
- policy Hz: /gmt/joint_targets messages received here during the scored interval / its length
  (and the policy's own /diagnostics).
- rt/lowcmd Hz, bad CRC, mode_machine mismatches, state->command latency percentiles: the sim's
  report (whole run, first to last command); ``sim_real_time``: whether the sim kept real time.
- The supervisor's mode sequence and fault (until the stop begins), the worst second of each
  node's own timing diagnostics, CPU per node, per-node exit codes, logs.

Exit status: 0 when the run happened, whatever the robot did; 1 with the failing node named and
its log tail (or the interface and domain tried when no robot state arrives); 2 for bad input.
"""
from __future__ import annotations

import os
import resource
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from gmt_ros import graph
from gmt_ros.tools.graph_observer import GraphObserver
from gmt_ros.tools.process_graph import (
    NodeFailedError,
    ProcessGraph,
    Sim2SimError,
    autogroup_nice,
    set_autogroup_nice,
    tail,
)
from gmt_ros.tools.sim2sim_options import (
    Sim2SimOptions,
    check_options,
    lighter_settings,
    other_node_processes,
    pick_ros_domain,
)
from gmt_ros.tools.sim2sim_report import GRAPH, timing_summary
from gmt_ros.tools.stream_run import StreamLink

WARMUP_S = 1.0  # seconds of robot state at the bridge before engaging: the sim's first moments are its slowest
ENGAGE_MARGIN_S = 4.0  # sim seconds on the gantry beyond warm-up + ramp (the service calls, a loaded machine)
SETTLE_S = 1.0  # sim seconds standing under the policy before the clip starts
LOWSTATE_PERIOD_S = 0.002  # the sim's rt/lowstate period (sim2sim.sdk_robot: 2 physics steps of 1 ms)
# --realtime: the sim stands in for physics, which never waits for a CPU; the bridge's 500 Hz writer
# uses its own writer_priority setting (as on the robot); every node's scheduling group runs ahead
# of other work (nice applies per autogroup, see process_graph).
REALTIME = {"sim_fifo": 20, "bridge_writer_fifo": 10, "nice": -15}
NODES_UP_TIMEOUT_S = 90.0  # imports (rclpy, onnxruntime, MuJoCo) on a loaded 2-core machine
LINK_TIMEOUT_S = 30.0  # sim start (MuJoCo model) + the first rt/lowstate at the bridge
STOP_ORDER = ("sim", "player", "stream", "planner", "policy", "bridge")


# ------------------------------------------------------------------------------------------------
# One run


class Sim2SimSession:
    """One graph run: ``start()`` (nodes, sim, policy engaged, gantry released), ``play()``,
    then ``finish()`` for the report. Use as a context manager: leaving it stops every process.
    ``kill(key)`` and ``wait_supervisor()`` are there for fault injection."""

    def __init__(self, options: Sim2SimOptions):
        self.opt = options
        self.clip_name, self.clip_duration, self.contract, clip_dirs = check_options(options)
        self.ros_domain = options.ros_domain if options.ros_domain is not None else pick_ros_domain()
        self._temp_logs = options.log_dir is None
        self.log_dir = Path(tempfile.mkdtemp(prefix="gmt_sim2sim_")) if self._temp_logs else Path(options.log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.report_path = self.log_dir / "sim_report.json"
        self.trace_path = self.log_dir / "sim_trace.npz"
        self.t0 = time.time()
        self.load_at_start = round(os.getloadavg()[0], 2)
        env = dict(os.environ)
        env.update(ROS_DOMAIN_ID=str(self.ros_domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
                   GMT_ROS_DDS_DOMAIN=str(options.domain), GMT_ROS_DDS_INTERFACE=options.interface,
                   PYTHONUNBUFFERED="1", RCUTILS_LOGGING_BUFFERED_STREAM="1")
        extra = {"bridge": {"ramp_time_s": str(options.ramp_time_s)}}
        if options.realtime:
            extra["bridge"]["writer_priority"] = str(REALTIME["bridge_writer_fifo"])
        self.source_key = graph.SOURCES[options.source].key
        self.script = None
        if options.source == "planner":
            from gmt_ros.tools.planner_run import load_session_script

            self.script = load_session_script(options)
        if options.source == "stream":
            from gmt_ros.tools import stream_run

            options.stream = options.stream or StreamLink()
            extra["stream"] = stream_run.node_settings(options.stream)
        elif clip_dirs:
            extra["player"] = {"clip_dirs": "[" + ",".join(f"'{d}'" for d in clip_dirs) + "]"}
        self.overrides = {} if options.launch_settings else lighter_settings(self.contract, options.source)
        for key, settings in list(self.overrides.items()) + list(options.node_settings.items()):
            extra[key] = extra.get(key, {}) | {k: str(v) for k, v in settings.items()}
        self.graph = ProcessGraph(GRAPH, self.log_dir, arguments={
            "interface": options.interface, "dds_domain": str(options.domain), "policy": options.policy,
            "dry_run": "false"}, extra=extra, env=env, nice=REALTIME["nice"] if options.realtime else options.nice,
            fifo={"sim": REALTIME["sim_fifo"]} if options.realtime else {}, source=options.source)
        self.hold_s = WARMUP_S + options.ramp_time_s + ENGAGE_MARGIN_S  # gantry, sim seconds
        self.observer: GraphObserver | None = None
        self.policy_time: float | None = None
        self.play_start: float | None = None
        self.play_end: float | None = None
        self.scored_s: float | None = None  # the clip time to score (the clip, or --seconds of it)
        self.ended_early_by: str | None = None  # the supervisor fault that stopped the clip
        self.stop_time: float | None = None
        self.exit_codes: dict | None = None
        self.notes: list[str] = []
        self.aborted: str | None = None  # why the clip was not played (a supervisor fault before it)
        self.cpu_during_clip: dict | None = None
        self.producer_log: dict | None = None  # source "stream": what the producer sent (stream_run)
        self.stream_standing_at: float | None = None  # source "stream": gmt_stream idle again after the clip
        self.link_time: float | None = None
        self._restore_priority: tuple | None = None
        self.timing: dict = {}
        self._failed = False

    # -- context -------------------------------------------------------------------------------

    def __enter__(self) -> Sim2SimSession:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._failed = self._failed or exc_type is not None
        self.close()

    def close(self) -> None:
        """Stop every process and the observer (idempotent). Temporary logs of a good run are removed."""
        if self.exit_codes is None:
            self.exit_codes = self.graph.stop_all(order=STOP_ORDER)  # keys not in the graph are skipped
        if self.observer is not None:
            self.observer.close()
            self.observer = None
        self._lower_self()
        if self._temp_logs and not self._failed:
            shutil.rmtree(self.log_dir, ignore_errors=True)

    # -- helpers -------------------------------------------------------------------------------

    def _fail(self, message: str) -> Sim2SimError:
        self._failed = True
        return Sim2SimError(message)

    def _check_nodes(self) -> None:
        try:
            self.graph.check_alive()
        except NodeFailedError as exc:
            raise self._fail(f"{exc}\n(interface {self.opt.interface!r}, DDS domain {self.opt.domain}, "
                             f"ROS domain {self.ros_domain}, logs in {self.log_dir})") from None

    def _wait(self, predicate, timeout_s: float, what: str, poll_s: float = 0.05):
        """Poll ``predicate()`` until truthy (returned); checks the nodes are alive; raises on timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = predicate()
            if value:
                return value
            self._check_nodes()
            if time.monotonic() > deadline:
                raise self._fail(f"{what} (waited {timeout_s:.0f} s; logs in {self.log_dir})")
            time.sleep(poll_s)

    def supervisor_state(self) -> dict | None:
        return self.observer.snapshot("supervisor_latest") if self.observer else None

    def wait_supervisor(self, predicate, timeout_s: float, what: str = "supervisor state") -> dict:
        def check():
            state = self.supervisor_state()
            return state if state is not None and predicate(state) else None
        return self._wait(check, timeout_s, f"the supervisor never reached {what}")

    def _mode_time(self, mode: str, after: float = 0.0) -> float | None:
        """Wall time the supervisor entered ``mode`` (its own event time when it has one)."""
        for t, state in self.observer.snapshot("supervisor"):
            if state.get("mode") == mode and t >= after:
                event = state.get("last_event") or {}
                if event.get("time") and f"-> {mode}" in event.get("message", ""):
                    return float(event["time"])
                return t
        return None

    def kill(self, key: str, sig: int = signal.SIGKILL) -> float:
        """Send ``sig`` to a node now; returns time.time() just before."""
        return self.graph.kill(key, sig)

    # -- steps ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Nodes up, sim on its gantry, supervisor in policy, gantry released, robot settled."""
        others = other_node_processes()
        if others:
            self.notes.append(f"{len(others)} other gmt_ros node process(es) were running at the start (another graph "
                              f"competes for the CPU): {'; '.join(others[:4])}")
        if self.opt.realtime:
            self._prioritise_self()
        self.observer = GraphObserver(self.ros_domain)
        for key in ("bridge", "policy", self.source_key):
            self.graph.start(key)
        obs = self.observer
        self._wait(lambda: obs.snapshot("supervisor_latest") is not None, NODES_UP_TIMEOUT_S,
                   "no /gmt/supervisor/state from the bridge")
        self._wait(lambda: "gmt_policy" in obs.snapshot("diagnostics"), NODES_UP_TIMEOUT_S,
                   "no /diagnostics from the policy node")
        if self.source_key == "stream":
            self._wait(lambda: obs.snapshot("stream"), NODES_UP_TIMEOUT_S, "no /gmt/stream/status from gmt_stream")
        elif self.source_key == "planner":
            self._wait(lambda: obs.snapshot("planner"), NODES_UP_TIMEOUT_S, "no /gmt/planner/status from gmt_planner")
        else:
            self._wait(lambda: obs.snapshot("player"), NODES_UP_TIMEOUT_S, "no /gmt/player/status from the player")
        self.graph.start("sim", ["--hold-start-s", f"{self.hold_s:g}", "--report", str(self.report_path),
                                 "--trace", str(self.trace_path)])
        self._wait_link()
        time.sleep(WARMUP_S)
        if not self._engage():
            return
        self._wait(lambda: self.sim_time_lower_bound() >= self.hold_s + SETTLE_S, 60.0,
                   "the bridge's lowstate count never showed the gantry release plus the settling time",
                   poll_s=0.1)
        state = self.supervisor_state()
        if state["mode"] != "policy":
            self._abort(f"after the gantry release the supervisor is in {state['mode']} (fault: {state.get('fault')})")

    def _prioritise_self(self) -> None:
        """--realtime: this process drives the supervisor through the engagement against the
        gantry's clock; starved behind the nodes it would engage too late. Before the observer's
        thread exists (threads inherit the nice value); our session's autogroup too."""
        nice = REALTIME["nice"]
        try:
            group_nice = autogroup_nice()
            self._restore_priority = (os.getpriority(os.PRIO_PROCESS, 0), group_nice)
            os.setpriority(os.PRIO_PROCESS, 0, nice)
            if group_nice is not None:
                set_autogroup_nice("self", nice)
        except OSError as exc:
            self.notes.append(f"--realtime: could not raise the runner's priority ({exc})")

    def _lower_self(self) -> None:
        """Undo _prioritise_self (the caller, e.g. a test session, goes on at its own priority)."""
        if self._restore_priority is None:
            return
        nice, group_nice = self._restore_priority
        self._restore_priority = None
        try:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
            if group_nice is not None:
                set_autogroup_nice("self", group_nice)
        except OSError:
            pass

    def _note_cpu(self, start) -> None:
        """Each node's CPU use (% of one core) from ``start`` (monotonic time, cpu_seconds()) to now."""
        t0, cpu0 = start
        dt, cpu1 = time.monotonic() - t0, self.graph.cpu_seconds()
        self.cpu_during_clip = {k: round((cpu1[k] - cpu0[k]) / dt * 100.0, 1) for k in cpu1
                                if cpu0.get(k) is not None and cpu1.get(k) is not None}

    def _abort(self, why: str) -> None:
        """The supervisor left the sequence (a fault): the graph ran, the clip will not be played."""
        self.aborted = why
        self.notes.append(f"clip not played: {why}")

    def sim_time_lower_bound(self) -> float:
        """Sim seconds at least elapsed: rt/lowstate messages counted by the bridge (1 Hz diagnostics)."""
        diag = self.observer.snapshot("diagnostics").get("gmt_bridge")
        try:
            return int(diag[2]["lowstate_count"]) * LOWSTATE_PERIOD_S if diag else 0.0
        except (KeyError, ValueError):
            return 0.0

    def _wait_link(self) -> None:
        def linked():
            state = self.supervisor_state()
            return state is not None and state.get("lowstate_age_s") is not None and state.get("startup_checked")

        deadline = time.monotonic() + LINK_TIMEOUT_S
        while not linked():
            self._check_nodes()
            if time.monotonic() > deadline:
                bridge = tail(self.graph.processes["bridge"].log_path, 8)
                sim = tail(self.graph.processes["sim"].log_path, 8)
                raise self._fail(
                    f"no rt/lowstate reached the bridge within {LINK_TIMEOUT_S:.0f} s on interface "
                    f"{self.opt.interface!r} DDS domain {self.opt.domain} (ROS domain {self.ros_domain}); "
                    f"bridge log:\n{bridge}\nsim log:\n{sim}")
            time.sleep(0.02)
        self.link_time = time.time()
        state = self.supervisor_state()
        if state.get("startup_error"):
            raise self._fail(f"the bridge's start-up check failed: {state['startup_error']}")

    def _engage(self) -> bool:
        """zero_torque -> damping -> ramp -> hold -> policy with the Trigger services
        (gmt_ros.tools.operate.engage). False (aborted) on a supervisor fault."""
        from gmt_ros.tools.operate import OperateError, engage

        obs = self.observer
        try:
            why = engage(obs, lambda name: obs.call_trigger(f"/gmt/supervisor/{name}"),
                         ramp_timeout_s=self.opt.ramp_time_s + 5.0, poll=self._check_nodes)
        except OperateError as exc:
            raise self._fail(f"{exc} (logs in {self.log_dir})") from None
        if why:
            self._abort(f"supervisor fault while engaging: {why}")
            return False
        self.policy_time = self._mode_time("policy")
        return True

    def play(self, timeout_s: float | None = None) -> None:
        """``play NAME`` on /gmt/player/command; returns once the scored part has played
        (the clip, or ``seconds`` of it), or early on a supervisor fault."""
        if self.aborted:
            return
        if self.source_key == "stream":
            from gmt_ros.tools.stream_run import play_stream

            return play_stream(self, timeout_s)
        if self.source_key == "planner":
            from gmt_ros.tools.planner_run import drive_script

            return drive_script(self)
        obs = self.observer
        seconds = self.opt.seconds if self.opt.seconds is not None else self.clip_duration
        scored = min(seconds, self.clip_duration)
        self.scored_s = scored
        timeout_s = timeout_s or scored + 30.0
        sent = time.time()
        cpu_start = (time.monotonic(), self.graph.cpu_seconds())
        obs.publish_command(f"play {self.clip_name}")

        def started():
            return any(t >= sent and s.get("clip") == self.clip_name and s.get("state") in ("blending_in", "playing")
                       for t, s in obs.snapshot("player"))
        self._wait(started, 10.0, f"the player did not take 'play {self.clip_name}'")
        deadline = time.monotonic() + timeout_s
        while True:
            self._check_nodes()
            statuses = [(t, s) for t, s in obs.snapshot("player") if t >= sent]
            starts = [t - s["clip_time"] for t, s in statuses if s.get("state") == "playing" and s.get("clip") == self.clip_name]
            if starts:
                self.play_start = min(starts)
                self.play_end = self.play_start + scored
                if time.time() >= self.play_end + 0.1:
                    self._note_cpu(cpu_start)
                    return
            if self.stopped_by_fault("the clip"):
                return
            if time.monotonic() > deadline:
                raise self._fail(f"the clip {self.clip_name} did not finish within {timeout_s:.0f} s")
            time.sleep(0.05)

    def stopped_by_fault(self, what: str) -> bool:
        """Whether the supervisor is in a fault: then it is noted and the scored interval (``what``:
        the clip, the script) ends at the fault."""
        state = self.supervisor_state()
        if not state.get("fault"):
            return False
        self.notes.append(f"supervisor fault during {what}: {state['fault']}")
        self.ended_early_by = state["fault"]
        fault_time = state.get("fault_time") or time.time()
        self.play_end = min(self.play_end or fault_time, fault_time, time.time())
        return True

    # -- results ---------------------------------------------------------------------------------

    def finish(self) -> dict:
        """Stop every process (sim first) and build the report."""
        obs = self.observer
        self.stop_time = time.time()
        supervisor = obs.snapshot("supervisor")
        final_state = obs.snapshot("supervisor_latest")
        targets = np.asarray(obs.snapshot("target_times"))
        windows = obs.snapshot("windows")
        player = obs.snapshot("player")
        diagnostics = obs.snapshot("diagnostics")
        self.observer_snapshot = {k: obs.snapshot(k) for k in ("stream", "stream_timing", "window_receipts",
                                                                "target_stamps", "target_times", "planner")}
        self.timing = timing_summary(obs.snapshot("diagnostics_history"), self.link_time or self.t0, self.stop_time)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu = {"node_cpu_s": self.graph.cpu_seconds() | {"runner": round(usage.ru_utime + usage.ru_stime, 2)},
                    "node_cpu_percent_during_clip": self.cpu_during_clip,
                    "node_scheduling": self.graph.niceness(),
                    "load_average_1min": round(os.getloadavg()[0], 2),
                    "cpus": os.cpu_count(), "load_average_at_start": self.load_at_start,
                    "other_node_processes": other_node_processes({p.pid for p in self.graph.processes.values()})}
        self.exit_codes = self.graph.stop_all(order=STOP_ORDER)
        return self._report(supervisor, final_state, targets, windows, player, diagnostics)

    def _report(self, supervisor, final_state, targets, windows, player, diagnostics) -> dict:
        from gmt_ros.tools.sim2sim_report import build_report

        return build_report(self, supervisor, final_state, targets, windows, player, diagnostics)

    def _rel(self, t: float | None) -> float | None:
        return None if t is None else round(t - self.t0, 3)


def run_sim2sim(options: Sim2SimOptions) -> dict:
    """One complete run (start, play, stop); the report dict. Raises Sim2SimError / UsageError,
    also when the sim's trace shows the gantry released before the policy was engaged."""
    with Sim2SimSession(options) as session:
        session.start()
        session.play()
        report = session.finish()
        if not session.aborted and not report["supervisor"]["policy_before_release"]:
            raise session._fail(f"the gantry released (at {report['supervisor']['gantry_release_at_s']} s) before the "
                                f"policy was engaged (at {report['supervisor']['policy_at_s']} s): the run is not valid; "
                                f"logs in {session.log_dir}")
        return report


# ------------------------------------------------------------------------------------------------
# CLI


def _interrupt(signum, _frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _raise_on_sigterm():
    """SIGTERM to the runner unwinds like Ctrl-C, so the finally blocks stop the nodes."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
