"""The simulated G1 as a robot on DDS: it reads ``rt/lowcmd`` and writes ``rt/lowstate`` with the
robot's own unitree_hg messages, so the real bridge (unitree_sdk2py) drives it unchanged.

Rates (wall clock, absolute deadlines, no ROS):

    physics + motor PD   1000 Hz   G1Sim, one 1 ms step; the PD uses the command held at that step
    rt/lowstate           500 Hz   every ``state_every_steps`` (2) physics steps; tick = sim ms
    rt/lowcmd           any rate   taken on the SDK's DDS listener thread, applied at the next step
    remote script         500 Hz   sampled into every lowstate's ``wireless_remote``

Pacing: chunk k (2 physics steps, then one lowstate) is due at ``start + k * 2 ms``. The loop sleeps
only until the next absolute deadline; when it is late it runs the next chunks at once (catch-up)
and counts an overrun for each chunk that starts more than one period late. A backlog beyond
``max_catchup_s`` is dropped (counted as ``skipped_s``) rather than fast-forwarding the robot.

Like the robot:
- a command with a wrong CRC is ignored (counted; the first few logged);
- a command whose ``mode_machine`` differs from the one this robot reports is ignored (counted);
- the motor drivers hold the last accepted command; no command for > ``command_timeout_s`` changes
  nothing, it is only counted as a gap (a stack that dies mid-motion leaves the robot on its last
  PD target, as on hardware).

Start-up "gantry" (``sim2sim.gantry``): with ``hold_start_s`` > 0 the pelvis is held at its start
pose for that much sim time, then released, so the robot does not fall before the stack starts
commanding. With ``hold_until_release`` it holds until an operator asks on the DDS
(``sim2sim.gantry_link``), which cannot race the bridge's ramp.

Trace (optional, ``trace=SimTraceRecorder()``, the node's ``--trace PATH``): 50 Hz rows of the
true robot state with the wall clock, and every change of command kind (zero torque / damping /
PD) as it is accepted; see ``sim2sim.trace``.

Fault injection (optional, ``faults=FaultInjector(...)``, the node's ``--fault SPEC``): stop, delay
or corrupt rt/lowstate, push the robot, press remote buttons, report dead motor slots; see
``sim2sim.fault_injection``. Every accepted command is also checked with
``CommandLimits.violations`` (what the bridge must never send); ``lowcmd.out_of_limit`` counts
those that reached the robot, with the first few reasons.

Statistics (``report()``; the node writes it as JSON; see ``sim2sim.robot_report``): commands
received, accepted and refused, gaps, the stack's reaction latency, pacing, the fall flag
(``metrics.has_fallen``). ``snapshot()`` gives the true root pose and velocity, joints and
``KEY_BODIES`` positions at any time from any thread (tracking metrics).

Remote controller script (``sim2sim.remote_script``): timed presses such as ``"2.0:A,5.0:L1+B@1.0"``
sampled into every lowstate's ``wireless_remote``; at run time ``press(buttons, duration_s)`` and
``set_remote(bytes)`` (sticks, held buttons) do the same.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from gmt_ros.adapters import lowlevel
from gmt_ros.core.command import JointCommand
from gmt_ros.core.command_limits import CommandLimits
from sim2sim import metrics
from sim2sim.gantry import Gantry, StartPose, build_model_with_gantry
from sim2sim.kinematics import KEY_BODIES
from sim2sim.remote_script import DEFAULT_PRESS_S, ScriptedRemote
from sim2sim.robot_config import SimRobotConfig
from sim2sim.robot_report import RobotStats, build_report, summary_line
from sim2sim.simulator import G1Sim

log = logging.getLogger("sim2sim.robot")


@dataclass
class SimSnapshot:
    """The simulated robot at one instant (world frame; quaternion w, x, y, z)."""

    sim_time: float
    root_pos: np.ndarray
    root_quat: np.ndarray
    root_lin_vel: np.ndarray
    root_ang_vel: np.ndarray
    joint_pos: np.ndarray
    joint_vel: np.ndarray
    body_names: tuple[str, ...]
    body_pos: np.ndarray  # (len(body_names), 3)
    gantry_active: bool
    fell: bool


def _roll_pitch(quat) -> tuple[float, float]:
    """Roll and pitch of a (w, x, y, z) quaternion, as rotations.to_rpy, in scalar math (the
    numpy version costs 0.1 ms, a tenth of the 500 Hz loop's budget)."""
    w, x, y, z = (float(v) for v in quat)
    roll = math.atan2(2.0 * (w * x + y * z), 1.0 - 2.0 * (x * x + y * y))
    pitch = math.asin(max(-1.0, min(1.0, 2.0 * (w * y - z * x))))
    return roll, pitch


# ------------------------------------------------------------------------------------------------
# The server


class SimRobotServer:
    """A G1Sim behind ``rt/lowcmd`` / ``rt/lowstate``. Use::

        server = SimRobotServer(SimRobotConfig(domain=1, interface="lo"))
        server.open()                  # DDS participant, publisher, subscriber
        server.run(seconds=30)         # blocks; or run_in_thread(); stop() from anywhere
        server.write_report("report.json"); server.close()

    ``step_chunk()`` advances without pacing or DDS (for in-process use and tests)."""

    def __init__(self, config: SimRobotConfig | None = None, start_pose: StartPose | None = None,
                 trace=None, faults=None):
        self.config = config or SimRobotConfig()
        self.trace = trace  # sim2sim.trace.SimTraceRecorder or None
        self.faults = faults  # sim2sim.fault_injection.FaultInjector or None
        self._limits = CommandLimits()  # what the robot received is checked against the bridge's own limits
        self.config.validate()
        self.start_pose = start_pose or StartPose()
        from sim2sim.randomization import DomainRandomization

        self.randomization = DomainRandomization.from_preset(self.config.dr, self.config.seed)
        self.sim = G1Sim(model=build_model_with_gantry(self.config.physics_dt, self.randomization),
                         physics_dt=self.config.physics_dt, seed=self.config.seed,
                         randomization=self.randomization)
        self.gantry = Gantry(self.sim)
        self.remote = ScriptedRemote(self.config.remote_script)
        self._sim_lock = threading.Lock()  # the loop's physics vs snapshot() readers
        self._cmd_lock = threading.Lock()  # DDS listener thread vs loop
        self._stats_lock = threading.Lock()
        self._pending: JointCommand | None = None
        self._stats = RobotStats(latency_s=collections.deque(maxlen=self.config.latency_buffer))
        self._stop_requested = False  # a plain flag: see stop()
        self._gantry_link = None  # sim2sim.gantry_link.GantryServer with hold_until_release
        self._last_state_pub: float | None = None  # perf_counter of the latest lowstate write
        self._msg = lowlevel.new_lowstate()
        self._publisher = None
        self._subscriber = None
        # Measurement tools (gmt-ros bench) set this: called with the tick of each rt/lowstate just
        # before it is written.
        self.on_state_write = None
        self._wall_start: float | None = None
        self._wall_end: float | None = None
        self._sim_start = 0.0
        self._reset()

    def _reset(self) -> None:
        p = self.start_pose
        self.sim.reset(root_pos=p.root_pos, root_quat=p.root_quat, joint_pos=p.joint_pos)
        if self.config.hold_start_s > 0 or self.config.hold_until_release:
            pos, quat = self.sim.root_pose()
            self.gantry.hold(pos, quat)
            mujoco.mj_forward(self.sim.model, self.sim.data)  # sensors (accelerometer) as held
        self._sim_start = self.sim.time

    # -- DDS ----------------------------------------------------------------------------------

    def open(self) -> None:
        """Join DDS (``config.domain`` on ``config.interface``) and start taking commands."""
        from unitree_sdk2py.core.channel import ChannelPublisher, ChannelSubscriber

        from gmt_ros.adapters import dds

        dds.init_channel_factory(self.config.domain, self.config.interface)
        # The protocol module's wire types: the SDK's unitree_hg types with a one-struct codec.
        self._publisher = ChannelPublisher(dds.LOWSTATE_TOPIC, lowlevel.FastLowState_)
        self._publisher.Init()
        self._subscriber = ChannelSubscriber(dds.LOWCMD_TOPIC, lowlevel.FastLowCmd_)
        self._subscriber.Init(self.on_lowcmd, 0)  # 0: handled on the listener thread, no extra queue
        if self.config.hold_until_release:
            from sim2sim.gantry_link import COMMAND_TOPIC, GantryServer

            self._gantry_link = GantryServer()
            log.info("gantry holds until released on %s (gmt-ros operate engage --release-gantry)", COMMAND_TOPIC)
        log.info("simulated G1 on interface %r domain %d: reading %s, writing %s (mode_machine %d)",
                 self.config.interface, self.config.domain, dds.LOWCMD_TOPIC, dds.LOWSTATE_TOPIC,
                 self.config.mode_machine)

    def close(self) -> None:
        if self._gantry_link is not None:
            self._gantry_link.close()
            self._gantry_link = None
        if self._subscriber is not None:
            self._subscriber.Close()
            self._subscriber = None
        if self._publisher is not None:
            self._publisher.Close()
            self._publisher = None

    def __enter__(self) -> SimRobotServer:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        self.close()

    # -- commands in (DDS listener thread) ----------------------------------------------------

    def on_lowcmd(self, msg) -> None:
        """Take one LowCmd_ as the robot does: bad CRC or foreign mode_machine -> ignored.
        Runs on the SDK's listener thread, so nothing may escape from it."""
        try:
            self._take_lowcmd(msg)
        except Exception as exc:  # a malformed sample must not kill the listener
            with self._stats_lock:
                self._stats.invalid += 1
                count = self._stats.invalid
            if count <= self.config.log_first_bad:
                log.warning("ignoring a LowCmd_ that could not be read: %r", exc)

    def _take_lowcmd(self, msg) -> None:
        now = time.perf_counter()
        cfg = self.config
        with self._stats_lock:
            st = self._stats
            st.lowcmd_received += 1
            if not lowlevel.verify_crc(msg):
                st.bad_crc += 1
                if st.bad_crc <= cfg.log_first_bad:
                    log.warning("ignoring LowCmd_ with a bad CRC (0x%08x, content gives 0x%08x); %d so far",
                                msg.crc, lowlevel.compute_crc(msg), st.bad_crc)
                return
            if msg.mode_machine != cfg.mode_machine:
                st.mode_machine_mismatch += 1
                if st.mode_machine_mismatch <= cfg.log_first_bad:
                    log.warning("ignoring LowCmd_ for mode_machine %d; this robot reports %d",
                                msg.mode_machine, cfg.mode_machine)
                return
            try:
                cmd, _ = lowlevel.unpack_lowcmd(msg, check_crc=False)
                cmd.validate()
            except ValueError as exc:
                st.invalid += 1
                if st.invalid <= cfg.log_first_bad:
                    log.warning("ignoring invalid LowCmd_: %s", exc)
                return
            if st.last_cmd_wall is not None:
                st.max_command_gap_s = max(st.max_command_gap_s, now - st.last_cmd_wall)
            else:
                st.first_cmd_wall = now
            st.lowcmd_accepted += 1
            violations = self._limits.violations(cmd)
            if violations:
                st.out_of_limit += 1
                if len(st.out_of_limit_reasons) < cfg.log_first_bad:
                    st.out_of_limit_reasons.append(f"{self.sim_time:.3f} s: {'; '.join(violations)}")
                    log.warning("accepted a LowCmd_ outside the command limits: %s", '; '.join(violations))
            st.last_cmd_wall = now
            st.last_cmd_unix = time.time()
            st.last_cmd_sim_time = self.sim_time
            st.in_gap = False
            if self._last_state_pub is not None:
                st.latency_s.append(now - self._last_state_pub)
        with self._cmd_lock:
            self._pending = cmd
        if self.trace is not None:
            self.trace.note_command(cmd.kp, cmd.kd, st.last_cmd_unix, st.last_cmd_sim_time)

    def _take_pending(self) -> JointCommand | None:
        if self._pending is None:
            return None
        with self._cmd_lock:
            cmd, self._pending = self._pending, None
        return cmd

    # -- remote -------------------------------------------------------------------------------

    def press(self, buttons, duration_s: float = DEFAULT_PRESS_S) -> None:
        """Hold ``buttons`` (names of gmt_ros.core.remote) together for ``duration_s`` from now."""
        self.remote.press(tuple(buttons), duration_s, self.sim_time)

    def set_remote(self, raw) -> None:
        """Base wireless_remote bytes (40): sticks and held buttons, until set again."""
        self.remote.set_remote(raw)

    # -- simulation ---------------------------------------------------------------------------

    @property
    def sim_time(self) -> float:
        """Seconds simulated since start (the clock of the remote script and ``hold_start_s``)."""
        return self.sim.time - self._sim_start

    def step_chunk(self) -> None:
        """Advance one chunk (``state_every_steps`` physics steps) applying commands as they came."""
        cfg = self.config
        with self._sim_lock:
            for _ in range(cfg.state_every_steps):
                cmd = self._take_pending()
                if cmd is not None:
                    self.sim.set_command(cmd)
                if self.gantry.active and self._gantry_due():
                    self.gantry.release()
                    log.info("gantry released at %.3f s", self.sim_time)
                self.sim.step(1)
            pos, quat = self.sim.root_pose()
            gantry = self.gantry.active
        roll, pitch = _roll_pitch(quat)
        height = float(pos[2])
        with self._stats_lock:
            st = self._stats
            st.physics_steps += cfg.state_every_steps
            st.min_pelvis_height_m = min(st.min_pelvis_height_m, height)
            if not gantry:
                st.min_pelvis_height_after_hold_m = min(st.min_pelvis_height_after_hold_m, height)
                st.max_tilt_rad = max(st.max_tilt_rad, abs(float(roll)), abs(float(pitch)))
            if not st.fell and metrics.has_fallen(height, float(roll), float(pitch)):
                st.fell = True
                st.fall_time_s = self.sim_time
                log.warning("the robot fell at %.3f s (pelvis %.2f m, roll %.2f, pitch %.2f rad)",
                            self.sim_time, height, roll, pitch)

    def _gantry_due(self) -> bool:
        if self.config.hold_until_release:
            return self._gantry_link is not None and self._gantry_link.requested.is_set()
        return self.sim_time >= self.config.hold_start_s - 1e-9

    def lowstate(self):
        """The LowState_ (with CRC) the robot reports now; reused message object."""
        with self._sim_lock:
            state = self.sim.state()
            t = self.sim_time
        state.mode_machine = self.config.mode_machine
        state.tick = int(round(t * 1000.0))  # ms since this robot started
        return lowlevel.build_lowstate(state, self.remote.bytes_at(state.tick / 1000.0), msg=self._msg)

    def publish_state(self) -> None:
        msg = self.lowstate()
        if self.faults is not None:
            msg = self.faults.outgoing_state(msg, self.sim_time)
            if msg is None:  # a fault withholds this state
                return
        if self.on_state_write is not None:
            self.on_state_write(msg.tick)
        written = self._publisher.Write(msg)  # the SDK prints the DDS error and returns False
        self._last_state_pub = time.perf_counter()
        with self._stats_lock:
            if written:
                self._stats.lowstate_published += 1
            else:
                self._stats.write_failures += 1

    def snapshot(self) -> SimSnapshot:
        """A consistent copy of the robot's true state (thread-safe; for tracking metrics)."""
        with self._sim_lock:
            pos, quat = self.sim.root_pose()
            lin, ang = self.sim.root_velocity()
            s = self.sim.state()
            body = self.sim.body_positions(KEY_BODIES)
            t = self.sim_time
            gantry = self.gantry.active
        with self._stats_lock:
            fell = self._stats.fell
        return SimSnapshot(t, pos, quat, lin, ang, s.joint_pos, s.joint_vel, KEY_BODIES, body, gantry, fell)

    # -- the paced loop -----------------------------------------------------------------------

    def stop(self) -> None:
        """Safe to call from a signal handler: it takes no lock. (Setting a threading.Event there
        can deadlock: the handler runs in the main thread, possibly inside the Event's own wait,
        which holds the Event's non-reentrant lock for a moment on each of 500 waits a second.
        Seen as a sim that ignored SIGINT and SIGTERM.) The loop notices within one period."""
        self._stop_requested = True

    def run(self, seconds: float | None = None) -> None:
        """Run in real time until ``stop()`` or for ``seconds`` more of sim time; needs ``open()``."""
        if self._publisher is None:
            raise RuntimeError("SimRobotServer.open() must be called before run()")
        if seconds is not None and not (math.isfinite(seconds) and seconds > 0):
            raise ValueError(f"seconds must be positive, got {seconds!r}")
        cfg = self.config
        period = cfg.state_every_steps * cfg.physics_dt
        n_chunks = None if seconds is None else int(math.ceil(seconds / period - 1e-9))
        start = time.perf_counter()
        self._wall_start = start
        self.publish_state()  # tick 0
        k = 0
        try:
            while not self._stop_requested and (n_chunks is None or k < n_chunks):
                k += 1
                deadline = start + k * period
                now = time.perf_counter()
                if now < deadline:
                    time.sleep(deadline - now)
                    if self._stop_requested:
                        break
                else:
                    self._note_lag(now - deadline, period)
                    if now - deadline > cfg.max_catchup_s:
                        start += now - deadline  # give up on the backlog: restart the schedule
                began = time.perf_counter()
                self.step_chunk()
                if self.faults is not None:
                    self.faults.after_chunk(self)
                self.publish_state()
                if self._gantry_link is not None:
                    self._gantry_link.publish("held" if self.gantry.active else "released")
                if self.trace is not None:
                    self.trace.after_chunk(self)
                self._stats.work_s.append(time.perf_counter() - began)
                self._check_command_gap()
        finally:
            self._wall_end = time.perf_counter()

    def run_in_thread(self, seconds: float | None = None) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(seconds,), name="sim2sim-robot", daemon=True)
        thread.start()
        return thread

    def _note_lag(self, lag: float, period: float) -> None:
        with self._stats_lock:
            st = self._stats
            st.max_lag_s = max(st.max_lag_s, lag)
            if lag > period:
                st.overruns += 1
            if lag > self.config.max_catchup_s:
                st.skipped_s += lag
                log.warning("%.0f ms behind real time: skipping the backlog", lag * 1000)

    def _check_command_gap(self) -> None:
        st = self._stats
        if st.last_cmd_wall is None or st.in_gap:
            return
        gap = time.perf_counter() - st.last_cmd_wall
        if gap > self.config.command_timeout_s:
            with self._stats_lock:
                if st.in_gap:
                    return
                st.in_gap = True
                st.command_gaps += 1
            log.warning("no valid LowCmd_ for %.2f s at sim time %.3f s: holding the last command (as the robot does)",
                        gap, self.sim_time)

    # -- report -------------------------------------------------------------------------------

    def report(self) -> dict:
        end = self._wall_end if self._wall_end is not None else time.perf_counter()
        wall = (end - self._wall_start) if self._wall_start is not None else 0.0
        with self._sim_lock:
            sim_time = self.sim_time
            pos, quat = self.sim.root_pose()
        with self._stats_lock:
            st = dataclasses.replace(self._stats, latency_s=list(self._stats.latency_s),
                                     work_s=list(self._stats.work_s))
        return build_report(self.config, st, start_pose=self.start_pose.source, sim_time=sim_time, wall=wall,
                            end=end, root_pos=pos, root_quat=quat,
                            fault_injection=self.faults.report() if self.faults is not None else None,
                            randomization=self.randomization.as_dict())

    def summary_line(self, report: dict | None = None) -> str:
        return summary_line(report or self.report())

    def write_report(self, path, data: dict | None = None) -> dict:
        """Write ``data`` (default: a fresh ``report()``) as JSON."""
        data = self.report() if data is None else data
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n")
        return data
