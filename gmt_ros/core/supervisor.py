"""The safety supervisor: the one owner of what the bridge sends to the motors.

Modes (``Mode``), entered only as drawn; any fault goes to DAMPING and latches:

    ZERO_TORQUE --start--> DAMPING --start--> RAMP --(ramp done)--> HOLD --policy--> POLICY
                             ^   ^              ^                              |
                             |   |              +------------hold--------------+
                             |   +------ stop (no fault) from any mode
                             +---------- fault / e-stop from any mode (latched until clear)
    (nothing goes back to zero torque)

- ZERO_TORQUE: the start mode, motors enabled with kp = kd = 0 (the operator can still move the robot).
- DAMPING: kp 0, kd ``damping_kd``: the terminal safe action.
- RAMP: a minimum-jerk blend from the joint positions measured when ramping began to the policy's
  default pose over ``ramp_time_s`` with the contract's gains. Entered from DAMPING (start) and
  from POLICY (hold), so leaving the policy never jumps to the default pose.
- HOLD: the default pose with the contract's gains.
- POLICY: the policy node's latest PD target.

Every command of RAMP, HOLD and POLICY passes ``CommandLimits.apply`` (NaN, gains, joint, speed and
torque limits); a command it refuses is a fault. Watchdogs in ``tick``: stale robot state, stale
PD target (the policy's heartbeat), fall (tilt, pelvis height estimate) and joint overspeed;
in ``state_source`` (every state): one publisher of rt/lowstate, its tick never going back.

Faults latch: while a fault is latched only DAMPING is possible; ``clear`` (operator) unlatches
it (a cause still present latches again on the next tick). Start-up check failures (robot vs
contract) are a fault that ``clear`` cannot remove. The supervisor is pure logic: it is stepped
with timestamps by its owner (the bridge's 500 Hz writer), never sleeps, publishes or exits the
process, and is not thread-safe (its owner serialises calls).
"""
from __future__ import annotations

import enum
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from gmt_ros.core import g1
from gmt_ros.core.command import JointCommand
from gmt_ros.core.command_limits import ClipReport, CommandFault, CommandLimits, SpeedReference
from gmt_ros.core.command_table import CommandTable
from gmt_ros.core.fall_check import FALL_HEIGHT_M, FALL_TILT_RAD, OVERSPEED_FACTOR, FallCheck
from gmt_ros.core.state import RobotState
from gmt_ros.core.state_source import StateSourceCheck

_MAX_EVENTS = 200  # kept in ``events``; older ones are dropped


class Mode(str, enum.Enum):
    ZERO_TORQUE = "zero_torque"
    DAMPING = "damping"
    RAMP = "ramp"
    HOLD = "hold"
    POLICY = "policy"


# Modes that drive the joints to positions: the fall and overspeed checks apply here.
ACTIVE_MODES = frozenset({Mode.RAMP, Mode.HOLD, Mode.POLICY})


class Request(str, enum.Enum):
    """Operator requests, from the remote, a ROS service or a topic."""

    START = "start"      # zero_torque -> damping, damping -> ramp
    POLICY = "policy"    # hold -> policy
    HOLD = "hold"        # policy -> ramp -> hold
    STOP = "stop"        # any -> damping (no fault)
    ESTOP = "estop"      # any -> damping, latched fault
    CLEAR = "clear"      # unlatch a fault (stays in damping)


@dataclass(frozen=True)
class RequestOutcome:
    accepted: bool  # False: refused or nothing to do
    message: str    # one line for logs and service responses

    def __str__(self) -> str:
        return self.message


@dataclass
class SupervisorConfig:
    state_timeout_s: float = 0.1
    target_timeout_s: float = 0.1
    ramp_time_s: float = 3.0
    damping_kd: float = g1.DAMPING_KD
    fall_tilt_rad: float = FALL_TILT_RAD  # inclination of the pelvis z axis from vertical
    fall_height_m: float = FALL_HEIGHT_M
    overspeed_factor: float = OVERSPEED_FACTOR  # measured |dq| above factor x the motor's rated speed -> fault
    # rt/lowstate from two publishers, or a tick going back, is a fault (``state_source``).
    single_state_source: bool = True
    # Remote buttons (decoded names) for each request; a combination is a '+'-joined set.
    buttons: dict = field(default_factory=lambda: {
        "estop": ("L1+R1", "Select"),
        "start": ("Start",),
        "policy": ("A",),
        "hold": ("B",),
        "clear": ("X",),
    })

    def __post_init__(self) -> None:
        for name in ("state_timeout_s", "target_timeout_s", "fall_tilt_rad", "overspeed_factor"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"supervisor: {name} must be a positive number, got {value!r}")
        for name in ("ramp_time_s", "damping_kd", "fall_height_m"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"supervisor: {name} must be a number >= 0, got {value!r}")
        from gmt_ros.core.remote import BUTTON_BITS  # names only; keeps the button table in one place

        for req, combos in self.buttons.items():
            Request(req)  # unknown request names raise ValueError naming them
            for combo in combos:
                unknown = [b for b in combo.split("+") if b not in BUTTON_BITS]
                if unknown:
                    raise ValueError(
                        f"supervisor: button combination {combo!r} for {req} names unknown buttons {unknown}")


@dataclass
class Decision:
    command: JointCommand
    mode: Mode
    fault: str | None
    clip: ClipReport


def _ms(seconds: float) -> str:
    return f"{1e3 * seconds:.1f} ms"


def minimum_jerk(s: float) -> float:
    """The minimum-jerk blend 10 s^3 - 15 s^4 + 6 s^5 for s in [0, 1]: zero speed and acceleration at both ends."""
    s = min(1.0, max(0.0, s))
    return s * s * s * (10.0 - 15.0 * s + 6.0 * s * s)


class Supervisor:
    def __init__(self, table: CommandTable, config: SupervisorConfig | None = None,
                 limits: CommandLimits | None = None, fall_height=None, fall_check: FallCheck | None = None):
        self.table = table  # the contract's pose and gains: ramp and hold use them
        self.config = config or SupervisorConfig()
        self.limits = limits or CommandLimits()
        # fall_height: callable(RobotState) -> pelvis height estimate, or None. ``fall_check``
        # replaces the check built from the config (calibration runs measure with thresholds off).
        self._fall_check = fall_check or FallCheck(self.config.fall_tilt_rad, self.config.fall_height_m,
                                                   self.config.overspeed_factor, fall_height)
        self.mode = Mode.ZERO_TORQUE
        self.fault: str | None = None
        self.fault_time: float | None = None
        self.startup_error: str | None = None
        self.startup_checked = False
        self.events: list[tuple[float, str]] = []  # (time, message), the last _MAX_EVENTS
        self.event_count = 0  # events ever recorded (``events`` keeps only the last ones)
        self.clip_totals = ClipReport()  # slot-ticks clipped since start, per reason
        self._events_taken = 0
        self._ramp_from: np.ndarray | None = None
        self._ramp_start = 0.0
        self._speed_ref = SpeedReference()  # what the velocity limit measures each command from
        self._prev_buttons: frozenset | None = None
        self._checked_state: RobotState | None = None  # the state the fall check last looked at
        self.fall_state: RobotState | None = None  # the state a fall fault latched on (until cleared)
        self._checked_fall: str | None = None
        self._source = StateSourceCheck() if self.config.single_state_source else None

    # -- inputs -------------------------------------------------------------------------------
    def state_source(self, writer: int | None, tick: int, now: float) -> str | None:
        """Every rt/lowstate, in arrival order (``tick`` only sees the newest): states from two
        publishers, or a tick that went back, latch a fault in any mode (``state_source`` module).
        Returns a note to log when a new publisher took over after the old one went quiet."""
        if self._source is None:
            return None
        reason = self._source.observe(writer, tick, now)
        if reason:
            self._latch(reason, now)
        return self._source.take_note()

    def startup_check(self, mode_machine: int, live_slots, now: float | None = None) -> str | None:
        """Compare the robot with the contract once; a mismatch latches a permanent fault.
        Returns the error text, or None when the robot fits the contract."""
        live = set(int(s) for s in live_slots)
        problems = []
        if mode_machine in g1.MODE_MACHINE_23DOF and self.table.needs_29dof:
            problems.append(f"robot reports mode_machine {mode_machine} (23-DoF) but the policy needs the 29-DoF body")
        elif mode_machine in g1.MODE_MACHINE_ARMS_ONLY:
            problems.append(f"robot reports mode_machine {mode_machine} (arms only)")
        elif mode_machine == 0:
            problems.append("robot reports mode_machine 0 (not set: Unitree's Python simulator, unitree_mujoco, reports "
                            "0; its profile states 5: config/bridge_unitree_mujoco.yaml, docs/UNITREE_MUJOCO.md)")
        elif mode_machine not in g1.MODE_MACHINE_23DOF | g1.MODE_MACHINE_29DOF:
            problems.append(f"robot reports unknown mode_machine {mode_machine}")
        missing = [g1.JOINT_NAMES[s] for s in self.table.required_slots if s not in live]
        if missing:
            problems.append(f"motor slots the policy drives report no live data: {', '.join(missing)}"
                            " (23-DoF robot, or waist locked?)")
        self.startup_checked = True
        if problems:
            self.startup_error = "start-up check failed: " + "; ".join(problems)
            self._latch(self.startup_error, now)
        else:
            self._event(now, f"start-up check passed: mode_machine {mode_machine}, "
                             f"all {len(self.table.required_slots)} slots the contract drives are live")
        return self.startup_error

    def request(self, req: Request | str, now: float) -> RequestOutcome:
        """Apply an operator request; the outcome says whether it was carried out, and why not."""
        req = Request(req)
        if req is Request.ESTOP:
            if self.fault == "e-stop":
                return RequestOutcome(True, "e-stop: already latched")
            self._latch("e-stop", now)
            return RequestOutcome(True, "e-stop: damping (latched; clear to continue)")
        if req is Request.STOP:
            self._enter(Mode.DAMPING, now, "stop requested")
            return RequestOutcome(True, "stopped: damping")
        if req is Request.CLEAR:
            if self.startup_error:
                return RequestOutcome(False, f"cannot clear: {self.startup_error}")
            if self.fault is None:
                return RequestOutcome(False, "no fault to clear")
            cleared = self.fault
            self.fault = None
            self.fall_state = None
            self.fault_time = None
            self._event(now, f"fault cleared: {cleared}")
            return RequestOutcome(True, f"cleared: {cleared}")
        if self.fault is not None:
            return RequestOutcome(False, f"refused {req.value}: fault latched ({self.fault})")
        if req is Request.START:
            if self.mode is Mode.ZERO_TORQUE:
                self._enter(Mode.DAMPING, now, "start")
                return RequestOutcome(True, "damping")
            if self.mode is Mode.DAMPING:
                if not self.startup_checked:
                    return RequestOutcome(False, "refused start: start-up check has not run (no robot state yet)")
                self._begin_ramp(now, f"start: ramp to the default pose over {self.config.ramp_time_s:.1f} s")
                return RequestOutcome(True, "ramping")
            return RequestOutcome(False, f"start ignored in {self.mode.value}")
        if req is Request.POLICY:
            if self.mode is Mode.HOLD:
                self._enter(Mode.POLICY, now, "policy on")
                return RequestOutcome(True, "policy")
            return RequestOutcome(False, f"refused policy: only from hold (now {self.mode.value})")
        if req is Request.HOLD:
            if self.mode is Mode.POLICY:
                self._begin_ramp(
                    now, f"policy off: ramp to the default pose over {self.config.ramp_time_s:.1f} s, then hold")
                return RequestOutcome(True, "ramping to hold")
            return RequestOutcome(False, f"hold ignored in {self.mode.value}")
        raise AssertionError(req)

    def buttons(self, pressed, now: float) -> list[RequestOutcome]:
        """Feed the remote's pressed buttons (decoded names). A request fires on the press edge of
        its combination; the e-stop fires whenever its combination is held. The first call only
        records the buttons (a button already held when the link comes up is not a press)."""
        pressed = frozenset(pressed)
        previous, self._prev_buttons = self._prev_buttons, pressed
        outcomes = []
        # The e-stop last: a clear pressed while the e-stop is held is overruled at once.
        by_name = sorted(self.config.buttons.items(), key=lambda item: item[0] == Request.ESTOP.value)
        for req_name, combos in by_name:
            for combo in combos:
                keys = frozenset(combo.split("+"))
                if not keys <= pressed:
                    continue
                is_estop = req_name == Request.ESTOP.value
                if is_estop and self.fault == "e-stop":
                    continue
                if is_estop or (previous is not None and not keys <= previous):
                    outcomes.append(self.request(Request(req_name), now))
        return outcomes

    def fault_now(self, reason: str, now: float) -> None:
        """A fault found by the owner (e.g. an invalid target in policy mode, shutdown): damping, latched."""
        self._latch(reason, now)

    # -- the per-tick decision ----------------------------------------------------------------
    def tick(self, now: float, state: RobotState | None, state_time: float | None,
             target: JointCommand | None, target_time: float | None) -> Decision:
        """The command to send now. ``state_time``/``target_time`` are receipt times on the same
        clock as ``now``. Never raises for bad inputs: they become faults."""
        clip = ClipReport()
        cfg = self.config
        # The state to act on: present and fresh, else None.
        fresh = state if state_time is not None and now - state_time <= cfg.state_timeout_s else None
        if state is not None and fresh is None and self.mode is not Mode.ZERO_TORQUE:
            age = _ms(now - state_time) if state_time is not None else "no receipt time"
            self._latch(f"robot state stale ({age} > {_ms(cfg.state_timeout_s)}): no rt/lowstate", now)
        if fresh is not None and self.mode in ACTIVE_MODES:
            fall = self._fall_reason(fresh)
            if fall:
                if self.fault is None:
                    self.fall_state = fresh
                self._latch(fall, now)

        cmd = None
        if self.mode is Mode.RAMP and fresh is not None:
            if self._ramp_from is None:
                self._ramp_from = fresh.joint_pos.copy()
                self._ramp_start = now
            s = (now - self._ramp_start) / cfg.ramp_time_s if cfg.ramp_time_s > 0 else 1.0
            q = self._ramp_from + (self.table.default_pose - self._ramp_from) * minimum_jerk(s)
            cmd = self.table.command(q)
            if s >= 1.0:
                self._enter(Mode.HOLD, now, "ramp done: hold")
        elif self.mode is Mode.HOLD and fresh is not None:
            cmd = self.table.command(self.table.default_pose)
        elif self.mode is Mode.POLICY and fresh is not None:
            if target is None or target_time is None:
                self._latch("no PD target from the policy", now)
            elif now - target_time > cfg.target_timeout_s:
                self._latch(f"PD target stale ({_ms(now - target_time)} > {_ms(cfg.target_timeout_s)}):"
                            " policy stopped or lagging", now)
            else:
                cmd = target
        key = target_time if self.mode is Mode.POLICY else None  # a policy target, by its stamp
        if cmd is not None and fresh is not None:  # a command is only built on a fresh state
            try:
                cmd, clip = self.limits.apply(cmd, fresh, *self._speed_ref.reference(now, key))
            except CommandFault as exc:
                self._latch(f"unsafe command in {self.mode.value}: {exc}", now)
                cmd = None
        self._speed_ref.sent(now, None if cmd is None else cmd.q, key)
        if cmd is None:
            cmd = JointCommand.zero_torque() if self.mode is Mode.ZERO_TORQUE else JointCommand.damping(cfg.damping_kd)
        else:
            self.clip_totals.joint_limit += clip.joint_limit
            self.clip_totals.velocity_limit += clip.velocity_limit
            self.clip_totals.torque_limit += clip.torque_limit
        return Decision(command=cmd, mode=self.mode, fault=self.fault, clip=clip)

    # -- reporting ----------------------------------------------------------------------------
    @property
    def fall_check(self) -> FallCheck:
        """The fall check in use (its ``max_tilt_rad`` / ``min_height_m`` record what it saw)."""
        return self._fall_check

    def new_events(self) -> list[tuple[float, str]]:
        """Events recorded since the previous call (at most the last _MAX_EVENTS)."""
        fresh = self.event_count - self._events_taken
        self._events_taken = self.event_count
        return list(self.events[-fresh:]) if fresh > 0 else []

    def status(self) -> dict:
        """A JSON-friendly snapshot: mode, fault, fault_time, startup_error, clip totals, last event."""
        last = self.events[-1] if self.events else None
        return {
            "mode": self.mode.value,
            "fault": self.fault,
            "fault_time": self.fault_time,
            "startup_checked": self.startup_checked,
            "startup_error": self.startup_error,
            "clip": asdict(self.clip_totals),
            "event_count": self.event_count,
            "last_event": None if last is None else {"time": last[0], "message": last[1]},
        }

    # -- helpers ------------------------------------------------------------------------------
    def _begin_ramp(self, now: float, why: str) -> None:
        self._ramp_from = None  # taken from the next fresh state
        self._ramp_start = now
        self._enter(Mode.RAMP, now, why)

    def _fall_reason(self, state: RobotState) -> str | None:
        """Why the robot must stop now (tilt, joint overspeed, height estimate), or None.
        Computed once per state object (the writer ticks as fast as states arrive or faster)."""
        if state is self._checked_state:
            return self._checked_fall
        self._checked_state, self._checked_fall = state, self._compute_fall_reason(state)
        return self._checked_fall

    def _compute_fall_reason(self, state: RobotState) -> str | None:
        return self._fall_check.reason(state)

    def _latch(self, reason: str, now: float | None) -> None:
        """Latch ``reason`` (unless a fault is already latched) and damp: one event, with the cause."""
        was = self.mode
        if self.fault is None:
            self.fault = reason
            self.fault_time = now
            self.mode = Mode.DAMPING
            self._event(now, f"FAULT: {reason} -> damping (was {was.value})")
        elif was is not Mode.DAMPING:
            self.mode = Mode.DAMPING
            self._event(now, f"{was.value} -> damping ({self.fault})")

    def _enter(self, mode: Mode, now: float | None, why: str) -> None:
        if mode is not self.mode:
            self._event(now, f"{self.mode.value} -> {mode.value}: {why}")
            self.mode = mode

    def _event(self, now: float | None, message: str) -> None:
        self.events.append((now if now is not None else float("nan"), message))
        self.event_count += 1
        del self.events[:-_MAX_EVENTS]
