"""Output safety: every motor command passes ``CommandLimits.apply`` on its way to the robot.

Checks, in order, each slot-wise and with magnitudes (a signed test misses large negative values):
1. non-finite q/dq/kp/kd/tau anywhere        -> CommandFault (never sent)
2. kp/kd outside [0, kp_max] / [0, kd_max]    -> CommandFault
3. q target beyond a joint limit by more than ``gross_margin_rad`` -> CommandFault (a policy that
   asks for that is broken; clipping would hide it). Smaller excursions are clipped to the
   *stop band*: a target may lie past a joint's limit as far as the PD would push the joint into
   its stop with at most ``stop_torque`` (default: the motor's rated torque), i.e. within
   [q_min - stop_torque / kp, q_max + stop_torque / kp]. Trained policies lead their joints with
   targets past the range (they were trained so, in simulators with soft or no joint limits); a
   target further out than the band asks the motor for more than its rating the moment the joint
   reaches the stop, and while the joint is inside its range the band's edge already saturates
   the motor (kp (q_max + stop_torque / kp - q) >= stop_torque), so clipping there takes nothing
   from the policy. Clipping to the range itself did: under domain randomisation it cost upright
   runs (docs/SAFETY.md, "Joint limits and policy targets").
4. q target moving faster than the motor's velocity limit since the last command -> clipped to
   the reachable range (a bounded step per tick).
5. q target clipped so that the PD torque at the measured state stays within the motor's torque
   limit, |kp (q* - q) + kd (dq* - dq) + tau| <= tau_max, and the feed-forward tau within ±tau_max.

The gross margin (``GROSS_MARGIN_RAD``, 3.3 rad, measured from the joint range) is calibrated, not a guess. A trained policy in
normal tracking asks for targets past the joint limits: its PD targets lead the joint, most at the
ankles (ankle pitch range [-0.87, +0.52] rad). Measured with the shipped TWIST2 student in the
offline loop with the bridge's limits in place (``python -m sim2sim.limits_report``: every shipped
clip, starts "clip" and "default", DR none, and DR gmt and hard with seeds 0-4; 286 clip x start x
DR x seed cases, each run raw and limited), the largest excess of a run that stayed upright was
1.00 rad without DR (gmt/airkick_stand from the default pose), 2.00 rad under DR hard and 2.15 rad
under DR gmt (twist2/walk_003 from the default pose, seed 2, right ankle pitch). The former
0.5 rad margin faulted, and so damped, 14 of the 26 undisturbed runs that were tracking fine. The
margin is >= 1.5 x the worst (2.15 rad), rounded up to 0.1 rad. A broken policy is still refused:
its actions x 100 saturate at the policy's own action clip, default ± 5 rad, which is 4.5 rad past
the knee's limit and up to 4.7 past the ankles' (16 of the 29 joints can reach 3.3 rad past a
limit that way), and the fault suite's 'huge' target is hundreds of rad off; both are refused on
their first command. The excursions that stay within the margin are clipped (check 3 and 5).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gmt_ros.core import g1
from gmt_ros.core.command import JointCommand
from gmt_ros.core.state import RobotState

# See the module docstring for how this was measured; the bridge should expose it as a parameter.
GROSS_MARGIN_RAD = 3.3


class CommandFault(Exception):
    """A command that must not reach the robot; the message names the field and joint."""


@dataclass
class ClipReport:
    """How much a command was changed on its way out (counts per reason)."""

    joint_limit: int = 0
    velocity_limit: int = 0
    torque_limit: int = 0

    @property
    def any(self) -> bool:
        return bool(self.joint_limit or self.velocity_limit or self.torque_limit)


@dataclass
class CommandLimits:
    kp_max: np.ndarray = field(default_factory=lambda: np.full(g1.NUM_BODY_JOINTS, 500.0))
    kd_max: np.ndarray = field(default_factory=lambda: np.full(g1.NUM_BODY_JOINTS, 20.0))
    q_min: np.ndarray = field(default_factory=g1.Q_MIN.copy)
    q_max: np.ndarray = field(default_factory=g1.Q_MAX.copy)
    dq_max: np.ndarray = field(default_factory=g1.DQ_MAX.copy)
    tau_max: np.ndarray = field(default_factory=g1.TAU_MAX.copy)
    gross_margin_rad: float = GROSS_MARGIN_RAD
    # N·m a target may ask the PD to push a joint into its stop with (check 3's stop band)
    stop_torque: np.ndarray = field(default_factory=g1.TAU_MAX.copy)

    def stop_band(self, kp: np.ndarray, stiff: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) q targets of check 3 for gains ``kp`` on the ``stiff`` slots (the joint
        range widened by stop_torque / kp; the range itself where there is no stiffness)."""
        reach = np.where(stiff, self.stop_torque / np.where(stiff, kp, 1.0), 0.0)
        return self.q_min - reach, self.q_max + reach

    def check(self, cmd: JointCommand) -> None:
        """Raise CommandFault for commands that must never be sent (checks 1-3)."""
        if self._passes(cmd):
            return
        try:
            cmd.validate()
        except ValueError as exc:
            raise CommandFault(str(exc)) from None
        for name, bound in (("kp", self.kp_max), ("kd", self.kd_max)):
            value = np.asarray(getattr(cmd, name))
            bad = np.flatnonzero(value > bound)
            if bad.size:
                s = bad[0]
                raise CommandFault(f"{name} {value[s]:.1f} above its bound {bound[s]:.1f} at {g1.JOINT_NAMES[s]}")
        stiff = np.asarray(cmd.enabled, bool) & (np.asarray(cmd.kp) > 0)
        excess = np.maximum(self.q_min - cmd.q, cmd.q - self.q_max)
        bad = np.flatnonzero(stiff & (excess > self.gross_margin_rad))
        if bad.size:
            s = bad[0]
            raise CommandFault(
                f"q target {cmd.q[s]:+.2f} rad at {g1.JOINT_NAMES[s]} is {excess[s]:.2f} rad outside its limits "
                f"[{self.q_min[s]:+.2f}, {self.q_max[s]:+.2f}]"
            )

    def target_excess(self, cmd: JointCommand) -> np.ndarray:
        """Per slot, how far the q target lies beyond its joint limit (rad; <= 0 inside, by that
        much); -inf on slots without stiffness (disabled or kp 0), which the gross check ignores."""
        q = np.asarray(cmd.q, dtype=np.float64)
        excess = np.maximum(self.q_min - q, q - self.q_max)
        stiff = np.asarray(cmd.enabled, bool) & (np.asarray(cmd.kp) > 0)
        return np.where(stiff, excess, -np.inf)

    def apply(self, cmd: JointCommand, state: RobotState, previous_q: np.ndarray | None, dt: float) -> tuple[JointCommand, ClipReport]:
        """Checked and clipped copy of ``cmd`` for the measured ``state``.

        ``previous_q`` is the q target sent on the previous tick (None on the first), ``dt`` the
        time since then; together they bound the target's speed.
        """
        self.check(cmd)
        out = cmd.copy()
        report = ClipReport()
        stiff = np.asarray(out.enabled, bool) & (out.kp > 0)
        # np.minimum/np.maximum rather than np.clip: the same result at a fraction of the cost,
        # which matters at 500 Hz in Python.
        low, high = self.stop_band(out.kp, stiff)
        q = np.minimum(np.maximum(out.q, low), high)
        report.joint_limit = int(np.count_nonzero(stiff & (q != out.q)))

        if previous_q is not None and dt > 0:
            step = self.dq_max * dt
            q_vel = np.minimum(np.maximum(q, previous_q - step), previous_q + step)
            report.velocity_limit = int(np.count_nonzero(stiff & (q_vel != q)))
            q = q_vel

        out.tau = np.minimum(np.maximum(out.tau, -self.tau_max), self.tau_max)
        # PD torque at the measured state: kp (q* - q) + kd (dq* - dq) + tau within ±tau_max.
        # kp > 0 on stiff slots, so the reachable band is [q + (-tau_max - rest)/kp, q + (tau_max - rest)/kp].
        rest = out.kd * (out.dq - state.joint_vel) + out.tau
        kp_safe = np.where(stiff, out.kp, 1.0)
        lo = state.joint_pos + (-self.tau_max - rest) / kp_safe
        hi = state.joint_pos + (self.tau_max - rest) / kp_safe
        q_tau = np.where(stiff, np.minimum(np.maximum(q, lo), hi), q)
        report.torque_limit = int(np.count_nonzero(q_tau != q))
        out.q = q_tau
        return out, report

    def _passes(self, cmd: JointCommand) -> bool:
        """The common case in one vectorised test: right shapes, finite, gains within bounds, no
        gross excursion. False sends ``check`` down the slow path that names the problem."""
        n = g1.NUM_BODY_JOINTS
        fields = (cmd.q, cmd.dq, cmd.kp, cmd.kd, cmd.tau, cmd.enabled)
        if any(np.shape(f) != (n,) for f in fields):
            return False
        values = np.concatenate(fields[:5]).astype(np.float64, copy=False)
        if not np.isfinite(values).all():
            return False
        kp, kd = values[2 * n:3 * n], values[3 * n:4 * n]
        excess = np.maximum(self.q_min - cmd.q, cmd.q - self.q_max)
        bad = (kp < 0) | (kd < 0) | (kp > self.kp_max) | (kd > self.kd_max)
        bad |= np.asarray(cmd.enabled, bool) & (kp > 0) & (excess > self.gross_margin_rad)
        return not bad.any()

    def violations(self, cmd: JointCommand) -> list[str]:
        """What is outside limits in a command as received (used by the simulator to count
        out-of-limit commands that reached the robot). Empty list: within limits."""
        found = []
        try:
            self.check(cmd)
        except CommandFault as exc:
            found.append(str(exc))
            return found
        stiff = np.asarray(cmd.enabled, bool) & (cmd.kp > 0)
        low, high = self.stop_band(cmd.kp, stiff)
        out = np.flatnonzero(stiff & ((cmd.q < low - 1e-6) | (cmd.q > high + 1e-6)))
        if out.size:
            found.append(f"q target would push a joint into its stop with more than its stop torque at "
                         f"{', '.join(g1.JOINT_NAMES[s] for s in out[:3])}")
        big_tau = np.flatnonzero(np.abs(cmd.tau) > self.tau_max + 1e-6)
        if big_tau.size:
            found.append(f"feed-forward tau above the motor limit at {g1.JOINT_NAMES[big_tau[0]]}")
        return found


class SpeedReference:
    """Where the velocity limit (check 4) measures each command's speed from.

    Ramp and hold poses change every command tick: their speed is measured tick to tick. A policy
    target is a step every policy period (20 ms at 50 Hz), held for several command ticks (ten at
    500 Hz); measured tick to tick, every step would read as an infinite speed and the limit
    would turn it into a ramp at the motor's rated speed, delaying the policy's corrections by up
    to a period. Measured in sim2sim, that delay toppled the robot on gmt/walk_stand in 3 of 4
    runs. So a new policy target (a new ``key``, e.g. its header stamp) is measured from where
    the previous one was first applied, over the time since: its speed across the policy period.
    A target still clipped after that moves on toward its value tick by tick while it is held.
    """

    def __init__(self) -> None:
        self._last: tuple[np.ndarray, float] | None = None  # q sent on the previous tick, when
        self._last_time: float | None = None  # the previous tick, sent or not
        self._anchor: tuple[object, np.ndarray, float] | None = None  # (key, q first sent, when)

    def is_new(self, key) -> bool:
        return key is not None and (self._anchor is None or key != self._anchor[0])

    def reference(self, now: float, key=None) -> tuple[np.ndarray | None, float]:
        """(previous q, seconds since) for ``CommandLimits.apply`` of the command of tick ``now``;
        ``key`` identifies a policy target (None: a pose made this tick)."""
        if self.is_new(key) and self._anchor is not None:
            return self._anchor[1], now - self._anchor[2]
        q = self._last[0] if self._last is not None else None
        return q, 0.0 if self._last_time is None else now - self._last_time

    def sent(self, now: float, q: np.ndarray | None, key=None) -> None:
        """Tick ``now`` sent ``q`` (None: nothing limited, e.g. damping); ``key`` as above."""
        if q is None or key is None:
            self._anchor = None
        elif self.is_new(key):
            self._anchor = (key, q.copy(), now)
        self._last = None if q is None else (q.copy(), now)
        self._last_time = now
