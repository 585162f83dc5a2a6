"""The safety supervisor: the one owner of what the bridge sends to the motors.

Modes (``Mode``), entered only as drawn; any fault goes to DAMPING and latches:

    ZERO_TORQUE --start--> DAMPING --start--> RAMP --(ramp done)--> HOLD --policy--> POLICY
         ^                   |  ^                                     ^  <--hold---    |
         |                   |  +--------------- fault / stop / e-stop from any mode --+
         +-------------------+ (nothing goes back to zero torque)

- ZERO_TORQUE: the start mode, motors enabled with kp = kd = 0 (the operator can still move the robot).
- DAMPING: kp 0, kd ``damping_kd``: the terminal safe action.
- RAMP: a minimum-jerk blend from the joint positions when ramping began to the policy's default
  pose over ``ramp_time_s`` with the contract's gains (target step per tick bounded by the
  command limits).
- HOLD: the default pose with the contract's gains.
- POLICY: the policy node's latest PD target, passed through ``CommandLimits``.

Faults latch: while a fault is latched only DAMPING is possible; ``clear`` (operator) unlatches
it when its cause is gone. Start-up checks (robot vs contract) are a fault that ``clear`` cannot
remove. The supervisor is pure logic: it is stepped with timestamps by its owner (the bridge's
500 Hz writer) and never sleeps, publishes or exits the process.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

import numpy as np

from gmt_ros.core import g1, rotations
from gmt_ros.core.command import JointCommand
from gmt_ros.core.command_limits import ClipReport, CommandFault, CommandLimits
from gmt_ros.core.state import RobotState


class Mode(str, enum.Enum):
    ZERO_TORQUE = "zero_torque"
    DAMPING = "damping"
    RAMP = "ramp"
    HOLD = "hold"
    POLICY = "policy"


class Request(str, enum.Enum):
    """Operator requests, from the remote, a ROS service or a topic."""

    START = "start"      # zero_torque -> damping -> ramp
    POLICY = "policy"    # hold -> policy
    HOLD = "hold"        # policy -> hold
    STOP = "stop"        # any -> damping (no fault)
    ESTOP = "estop"      # any -> damping, latched fault
    CLEAR = "clear"      # unlatch a cleared fault (stays in damping)


@dataclass
class SupervisorConfig:
    state_timeout_s: float = 0.05
    target_timeout_s: float = 0.1
    ramp_time_s: float = 3.0
    damping_kd: float = g1.DAMPING_KD
    fall_tilt_rad: float = 0.9
    fall_height_m: float = 0.35
    overspeed_factor: float = 1.5  # measured |dq| above factor x the motor's rated speed -> fault
    # Remote buttons (decoded names) for each request; a combination is a '+'-joined set.
    buttons: dict = field(default_factory=lambda: {
        "estop": ("L1+R1", "Select"),
        "start": ("Start",),
        "policy": ("A",),
        "hold": ("B",),
        "clear": ("X",),
    })


@dataclass
class Targets:
    """What the supervisor needs from the policy contract."""

    default_pose: np.ndarray          # (29,) hold/ramp target, slot order
    kp: np.ndarray                    # (29,) gains for ramp/hold (contract gains, held joints included)
    kd: np.ndarray
    required_slots: tuple             # slots the contract drives (policy + held joints)
    needs_29dof: bool                 # policy uses waist roll/pitch or wrists


@dataclass
class Decision:
    command: JointCommand
    mode: Mode
    fault: str | None
    clip: ClipReport


class Supervisor:
    def __init__(self, targets: Targets, config: SupervisorConfig | None = None,
                 limits: CommandLimits | None = None, fall_height=None):
        self.targets = targets
        self.config = config or SupervisorConfig()
        self.limits = limits or CommandLimits()
        self._fall_height = fall_height  # callable(RobotState) -> pelvis height estimate, or None
        self.mode = Mode.ZERO_TORQUE
        self.fault: str | None = None
        self.fault_time: float | None = None
        self.startup_error: str | None = None
        self.startup_checked = False
        self.events: list[tuple[float, str]] = []  # (time, message), for logs and reports
        self._ramp_from: np.ndarray | None = None
        self._ramp_start = 0.0
        self._last_q: np.ndarray | None = None
        self._last_time: float | None = None
        self._prev_buttons: frozenset = frozenset()

    # -- inputs -------------------------------------------------------------------------------
    def startup_check(self, mode_machine: int, live_slots) -> str | None:
        """Compare the robot with the contract once; a mismatch latches a permanent fault."""
        live = set(int(s) for s in live_slots)
        problems = []
        if mode_machine in g1.MODE_MACHINE_23DOF and self.targets.needs_29dof:
            problems.append(f"robot reports mode_machine {mode_machine} (23-DoF) but the policy needs the 29-DoF body")
        elif mode_machine in g1.MODE_MACHINE_ARMS_ONLY:
            problems.append(f"robot reports mode_machine {mode_machine} (arms only)")
        elif mode_machine not in g1.MODE_MACHINE_23DOF | g1.MODE_MACHINE_29DOF:
            problems.append(f"robot reports unknown mode_machine {mode_machine}")
        missing = [g1.JOINT_NAMES[s] for s in self.targets.required_slots if s not in live]
        if missing:
            problems.append(f"motor slots the policy drives report no live data: {', '.join(missing)}"
                            " (23-DoF robot, or waist locked?)")
        self.startup_checked = True
        if problems:
            self.startup_error = "start-up check failed: " + "; ".join(problems)
            self._latch(self.startup_error, None)
        return self.startup_error

    def request(self, req: Request, now: float) -> str:
        """Apply an operator request; returns a one-line outcome for logs/services."""
        req = Request(req)
        if req is Request.ESTOP:
            self._latch("e-stop", now)
            return "e-stop: damping (latched; clear to continue)"
        if req is Request.STOP:
            self._enter(Mode.DAMPING, now, "stop requested")
            return "stopped: damping"
        if req is Request.CLEAR:
            if self.startup_error:
                return f"cannot clear: {self.startup_error}"
            if self.fault is None:
                return "no fault to clear"
            cleared = self.fault
            self.fault = None
            self._event(now, f"fault cleared: {cleared}")
            return f"cleared: {cleared}"
        if self.fault is not None:
            return f"refused {req.value}: fault latched ({self.fault})"
        if req is Request.START:
            if self.mode is Mode.ZERO_TORQUE:
                self._enter(Mode.DAMPING, now, "start: damping")
                return "damping"
            if self.mode is Mode.DAMPING:
                if not self.startup_checked:
                    return "refused start: start-up check has not run (no robot state yet)"
                self._ramp_from = None  # taken from the next state
                self._ramp_start = now
                self._enter(Mode.RAMP, now, f"ramp to default pose over {self.config.ramp_time_s:.1f} s")
                return "ramping"
            return f"start ignored in {self.mode.value}"
        if req is Request.POLICY:
            if self.mode is Mode.HOLD:
                self._enter(Mode.POLICY, now, "policy on")
                return "policy"
            return f"refused policy: only from hold (now {self.mode.value})"
        if req is Request.HOLD:
            if self.mode is Mode.POLICY:
                self._enter(Mode.HOLD, now, "policy off: hold")
                return "hold"
            return f"hold ignored in {self.mode.value}"
        raise AssertionError(req)

    def buttons(self, pressed: frozenset, now: float) -> None:
        """Feed the remote's pressed buttons; requests fire on the press edge (e-stop while held)."""
        pressed = frozenset(pressed)
        for req_name, combos in self.config.buttons.items():
            for combo in combos:
                keys = frozenset(combo.split("+"))
                if keys <= pressed and (req_name == "estop" or not keys <= self._prev_buttons):
                    if req_name == "estop" and self.fault == "e-stop":
                        continue
                    self.request(Request(req_name), now)
        self._prev_buttons = pressed

    # -- the per-tick decision ----------------------------------------------------------------
    def tick(self, now: float, state: RobotState | None, state_time: float | None,
             target: JointCommand | None, target_time: float | None) -> Decision:
        """The command to send now. ``state_time``/``target_time`` are receipt times on the same
        clock as ``now``. Never raises for bad inputs: they become faults."""
        clip = ClipReport()
        state_ok = state is not None and state_time is not None and now - state_time <= self.config.state_timeout_s
        if state is not None and not state_ok and self.mode is not Mode.ZERO_TORQUE:
            self._latch(f"robot state stale ({now - state_time:.3f} s > {self.config.state_timeout_s:.3f} s)", now)
        if state_ok:
            fall = self._fall_reason(state)
            if fall and self.mode in (Mode.RAMP, Mode.HOLD, Mode.POLICY):
                self._latch(fall, now)

        cmd = None
        if self.mode is Mode.RAMP and state_ok:
            if self._ramp_from is None:
                self._ramp_from = state.joint_pos.copy()
                self._ramp_start = now
            s = min(1.0, (now - self._ramp_start) / max(self.config.ramp_time_s, 1e-6))
            blend = s * s * s * (10 - 15 * s + 6 * s * s)  # minimum jerk: zero velocity at both ends
            q = self._ramp_from + (self.targets.default_pose - self._ramp_from) * blend
            cmd = self._pose_command(q)
            if s >= 1.0:
                self._enter(Mode.HOLD, now, "ramp done: hold")
        elif self.mode is Mode.HOLD and state_ok:
            cmd = self._pose_command(self.targets.default_pose)
        elif self.mode is Mode.POLICY and state_ok:
            if target is None or target_time is None:
                self._latch("no PD target from the policy", now)
            elif now - target_time > self.config.target_timeout_s:
                self._latch(f"PD target stale ({now - target_time:.3f} s > {self.config.target_timeout_s:.3f} s):"
                            " policy stopped or lagging", now)
            else:
                cmd = target
        if cmd is not None:
            try:
                cmd, clip = self.limits.apply(cmd, state, self._last_q, 0.0 if self._last_time is None else now - self._last_time)
            except CommandFault as exc:
                self._latch(f"unsafe command from {self.mode.value}: {exc}", now)
                cmd = None
        if cmd is None:
            cmd = JointCommand.zero_torque() if self.mode is Mode.ZERO_TORQUE else JointCommand.damping(self.config.damping_kd)
            self._last_q = None
        else:
            self._last_q = cmd.q.copy()
        self._last_time = now
        return Decision(command=cmd, mode=self.mode, fault=self.fault, clip=clip)

    # -- helpers ------------------------------------------------------------------------------
    def _pose_command(self, q: np.ndarray) -> JointCommand:
        n = g1.NUM_BODY_JOINTS
        return JointCommand(q=np.asarray(q, float).copy(), dq=np.zeros(n), kp=self.targets.kp.copy(),
                            kd=self.targets.kd.copy(), tau=np.zeros(n), enabled=np.ones(n, bool))

    def _fall_reason(self, state: RobotState) -> str | None:
        """Why the robot must stop now (tilt, height estimate, joint overspeed), or None."""
        roll, pitch, _ = rotations.to_rpy(state.imu_quat)
        tilt = max(abs(roll), abs(pitch))
        if tilt > self.config.fall_tilt_rad:
            return f"fall detected: tilt {math.degrees(tilt):.0f} deg > {math.degrees(self.config.fall_tilt_rad):.0f} deg"
        over = np.flatnonzero(np.abs(state.joint_vel) > self.config.overspeed_factor * g1.DQ_MAX)
        if over.size:
            s = over[0]
            return (f"joint overspeed: {g1.JOINT_NAMES[s]} at {state.joint_vel[s]:+.1f} rad/s"
                    f" (limit {self.config.overspeed_factor * g1.DQ_MAX[s]:.1f})")
        if self._fall_height is not None:
            h = float(self._fall_height(state))
            if h < self.config.fall_height_m:
                return f"fall detected: pelvis height estimate {h:.2f} m < {self.config.fall_height_m:.2f} m"
        return None

    def _latch(self, reason: str, now: float | None) -> None:
        if self.fault is None:
            self.fault = reason
            self.fault_time = now
            self._event(now, f"FAULT: {reason}")
        self._enter(Mode.DAMPING, now, None)

    def _enter(self, mode: Mode, now: float | None, why: str | None) -> None:
        if mode is not self.mode:
            self._event(now, f"{self.mode.value} -> {mode.value}" + (f": {why}" if why else f" ({self.fault})" if self.fault else ""))
            self.mode = mode

    def _event(self, now: float | None, message: str) -> None:
        self.events.append((now if now is not None else float("nan"), message))
        del self.events[:-200]
