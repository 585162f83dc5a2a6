"""Velocity commands for the locomotion planner: checked, limited, ramped, timed out.

A command is a planar body velocity (REP 103: ``vx`` forward, ``vy`` left, m/s; ``wz``
counter-clockwise, rad/s), what ``geometry_msgs/Twist`` on ``/cmd_vel`` carries and what the
remote's sticks map to. ``check`` turns a raw command into one the planner may follow:

- NaN or inf in any used component: refused (``BadVelocityCommand``, reason ``not_finite``);
- a magnitude beyond ``VelocityLimits.absurd_*`` (no G1 walks 5 m/s or turns 10 rad/s; more is a
  unit mistake or a corrupted message): refused (reason ``absurd``);
- otherwise clamped into the speed limits, with a note saying what was clamped.

A refused command changes nothing: the previous accepted one stays, and its age keeps growing, so
a producer that only sends garbage times out like one that stopped. ``CommandRamp`` moves the
followed velocity towards the accepted target within the acceleration limits; ``target_at`` and
``ramp`` are pure functions so that the planner can roll the same ramp into the future.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

AXES = ("vx", "vy", "wz")


class BadVelocityCommand(ValueError):
    """A command that must not be followed; ``reason`` is a short code (``not_finite``, ``absurd``)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class VelocityLimits:
    """Speed limits (what the planner follows at most), acceleration limits (how fast the followed
    velocity may change) and the absurd bounds beyond which a command is refused, not clamped."""

    max_vx: float = 0.8          # m/s forward
    max_vx_backward: float = 0.4  # m/s backward (magnitude)
    max_vy: float = 0.4          # m/s sideways, either way
    max_wz: float = 1.0          # rad/s, either way
    max_accel_x: float = 1.0     # m/s^2
    max_accel_y: float = 1.0     # m/s^2
    max_accel_wz: float = 2.0    # rad/s^2
    absurd_speed: float = 5.0    # m/s: a command's vx or vy beyond this is refused
    absurd_yaw_rate: float = 10.0  # rad/s

    def __post_init__(self):
        for name in ("max_vx", "max_vx_backward", "max_vy", "max_wz", "max_accel_x", "max_accel_y",
                     "max_accel_wz", "absurd_speed", "absurd_yaw_rate"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"velocity limit {name} must be a finite number >= 0, got {value!r}")
        for name in ("max_accel_x", "max_accel_y", "max_accel_wz"):
            if getattr(self, name) <= 0:
                raise ValueError(f"velocity limit {name} must be positive, got {getattr(self, name)}")
        if max(self.max_vx, self.max_vx_backward, self.max_vy) > self.absurd_speed:
            raise ValueError(f"speed limits exceed absurd_speed {self.absurd_speed}")
        if self.max_wz > self.absurd_yaw_rate:
            raise ValueError(f"max_wz {self.max_wz} exceeds absurd_yaw_rate {self.absurd_yaw_rate}")

    @property
    def accel(self) -> np.ndarray:
        return np.array([self.max_accel_x, self.max_accel_y, self.max_accel_wz])


@dataclass(frozen=True)
class CheckedCommand:
    velocity: np.ndarray  # (3,) vx, vy, wz after clamping
    note: str = ""  # what was clamped, or ignored; "" when the command was taken as sent


def check(vx: float, vy: float, wz: float, limits: VelocityLimits, ignored: dict | None = None) -> CheckedCommand:
    """The command to follow for a raw (vx, vy, wz); raises BadVelocityCommand (see module doc).
    ``ignored``: other components of the message (e.g. a Twist's linear.z) by name; non-finite
    ones refuse the command too, non-zero ones are mentioned in the note."""
    raw = {"vx": vx, "vy": vy, "wz": wz}
    others = dict(ignored or {})
    for name, value in {**raw, **others}.items():
        try:
            finite = math.isfinite(float(value))
        except (TypeError, ValueError):
            finite = False
        if not finite:
            raise BadVelocityCommand("not_finite", f"velocity command {name} is {value!r}")
    vx, vy, wz = float(vx), float(vy), float(wz)
    for name, value, bound, unit in (("vx", vx, limits.absurd_speed, "m/s"), ("vy", vy, limits.absurd_speed, "m/s"),
                                     ("wz", wz, limits.absurd_yaw_rate, "rad/s")):
        if abs(value) > bound:
            raise BadVelocityCommand("absurd", f"velocity command {name} = {value:g} {unit} is beyond "
                                               f"{bound:g} {unit}: refused (not clamped)")
    out = np.array([min(max(vx, -limits.max_vx_backward), limits.max_vx),
                    min(max(vy, -limits.max_vy), limits.max_vy),
                    min(max(wz, -limits.max_wz), limits.max_wz)])
    notes = [f"{name} {value:g} clamped to {out[i]:g}" for i, (name, value) in enumerate(raw.items())
             if out[i] != float(value)]
    notes += [f"{name} {float(value):g} ignored" for name, value in others.items() if float(value) != 0.0]
    return CheckedCommand(out, "; ".join(notes))


def ramp(current: np.ndarray, target: np.ndarray, accel: np.ndarray, dt: float) -> np.ndarray:
    """One step of ``dt`` from ``current`` towards ``target`` (per axis, at most accel * dt)."""
    step = np.asarray(accel, dtype=np.float64) * dt
    return current + np.clip(np.asarray(target, dtype=np.float64) - current, -step, step)


class CommandRamp:
    """The accepted target and its age. ``target_at(now)`` is zero once no command has been
    accepted for ``timeout_s`` (the producer stopped: the planner brings the robot to standing);
    ``timed_out`` says so."""

    def __init__(self, limits: VelocityLimits, timeout_s: float = 0.5):
        if not (math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError(f"command timeout must be positive, got {timeout_s}")
        self.limits = limits
        self.timeout_s = float(timeout_s)
        self._target = np.zeros(3)
        self._accepted_at: float | None = None

    def accept(self, velocity: np.ndarray, now: float) -> None:
        self._target = np.array(velocity, dtype=np.float64)
        self._accepted_at = float(now)

    def timed_out(self, now: float) -> bool:
        return self._accepted_at is None or now - self._accepted_at > self.timeout_s

    def age(self, now: float) -> float:
        return math.inf if self._accepted_at is None else now - self._accepted_at

    def target_at(self, now: float) -> np.ndarray:
        return np.zeros(3) if self.timed_out(now) else self._target.copy()


def stick_velocity(lx: float, ly: float, rx: float, limits: VelocityLimits, deadzone: float = 0.1) -> np.ndarray | None:
    """The command the G1 remote's sticks ask for, or None when both are centred (every axis
    inside ``deadzone``). Left stick up (ly > 0) walks forward, left stick right (lx > 0) steps
    right, right stick right (rx > 0) turns clockwise; full deflection is the speed limit and
    the deadzone is taken out (``(|s| - deadzone) / (1 - deadzone)``). Non-finite values (a
    corrupt remote frame) count as centred."""
    def axis(value: float) -> float:
        value = float(value)
        if not math.isfinite(value) or abs(value) <= deadzone:
            return 0.0
        return math.copysign(min((abs(value) - deadzone) / (1.0 - deadzone), 1.0), value)

    fwd, side, turn = axis(ly), axis(lx), axis(rx)
    if fwd == 0.0 and side == 0.0 and turn == 0.0:
        return None
    vx = fwd * (limits.max_vx if fwd > 0 else limits.max_vx_backward)
    return np.array([vx, -side * limits.max_vy, -turn * limits.max_wz])


class VelocityFeedback:
    """Slow integral correction of the command from the measured velocity (``LegOdometry``).

    A tracking policy does not walk exactly the reference's speed: it follows the clips' stride
    as much as the root velocity. Once a command has held for ``settle_s`` (the ramp and a step
    or two), the correction integrates ``gain`` x (command - measured) per second, bounded per
    axis by ``bound`` (vx, vy m/s, wz rad/s); the planner's root warp aims at command + correction
    (``LocomotionPlanner.window(..., correction)``).
    A new command (beyond ``deadband``) or a zero one starts again from no correction; so does a
    missing measurement for longer than ``settle_s``.
    """

    def __init__(self, gain: float = 0.25, bound=(0.3, 0.3, 0.4), settle_s: float = 1.0, deadband: float = 0.02):
        bound = np.asarray(bound, dtype=np.float64)
        if not (math.isfinite(gain) and gain >= 0 and bound.shape == (3,) and np.all(np.isfinite(bound))
                and np.all(bound >= 0) and math.isfinite(settle_s) and settle_s >= 0):
            raise ValueError(f"velocity feedback: gain, bound (3) and settle_s must be finite and >= 0, "
                             f"got {gain}, {bound}, {settle_s}")
        self.gain, self.bound, self.settle_s, self.deadband = float(gain), bound, float(settle_s), float(deadband)
        self.correction = np.zeros(3)
        self._command = np.zeros(3)
        self._since: float | None = None  # when the command last changed
        self._last_t: float | None = None
        self._measured_at: float | None = None

    def update(self, now: float, command: np.ndarray, measured: np.ndarray | None) -> np.ndarray:
        """The correction to add to ``command`` now (see the class docstring)."""
        self.target(now, command, measured)
        return self.correction.copy()

    def target(self, now: float, command: np.ndarray, measured: np.ndarray | None) -> np.ndarray:
        command = np.asarray(command, dtype=np.float64)
        if self._since is None or np.max(np.abs(command - self._command)) > self.deadband or not np.any(command):
            self._command, self._since = command.copy(), now
            self.correction = np.zeros(3)
        if measured is not None:
            self._measured_at = now
        elif self._measured_at is None or now - self._measured_at > self.settle_s:
            self.correction = np.zeros(3)
        dt = 0.0 if self._last_t is None else min(max(now - self._last_t, 0.0), 0.1)
        self._last_t = now
        if measured is not None and np.any(command) and now - self._since >= self.settle_s:
            self.correction = np.clip(self.correction + self.gain * dt * (command - measured), -self.bound, self.bound)
        return command + self.correction
