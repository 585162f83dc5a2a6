"""Closed-loop evaluation in one process: tracking policy at 50 Hz, G1 physics at 1 kHz.

Rates: physics 1000 Hz (``G1Sim``), policy ``contract.rate_hz`` (50 Hz: 20 physics steps per
tick), metrics (and the optional per-tick trace) sampled once per policy tick, an optional frame
hook (video) at its own rate on the physics clock. No ROS, no DDS: this is the fast, deterministic
reference loop that ``gmt-ros eval`` / ``gmt-ros evaluate`` run; the node graph
(``gmt-ros sim2sim``) is measured against the same metrics.

Metrics use the simulator's ground truth (true joint angles, root pose and velocity, body frames);
the policy sees ``sim.state()``, which under domain randomisation is delayed and noisy.

Send path (``command_limits``): by default the policy's targets reach the motors the way the
bridge sends them on the robot, through the bridge's own ``Supervisor`` (one send path, the
robot's): the command the bridge builds from the published targets (``TargetMapper``: contract
kp/kd, held joints at their hold targets) goes to ``Supervisor.tick`` at the bridge's rate
(``BRIDGE_RATE_HZ``, 10 times per policy tick, the same target each time, stamped with its policy
tick) with the measured ``sim.state()``: its fall check, then ``CommandLimits.apply`` with its
target-speed rule. The supervisor is brought to policy mode before t = 0 the way an operator does
it (start, start, a ramp of zero length, hold, policy). A fault it latches ends the episode like a
fall (on the robot it then damps the motors): ``result.command_fault`` names an unsafe command,
``result.fall_detected`` a fall check. ``command_limits="range"`` uses the joint-range clip of
earlier versions (no stop band), for comparison; ``command_limits=None`` (or ``"raw"``) sends
the raw targets with no supervisor at all (an evaluation option: on the robot every command
passes the supervisor), optionally watched by a fall detector (``fall_check``).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gmt_ros.core import g1, rotations
from gmt_ros.core.command import JointCommand
from gmt_ros.core.command_limits import ClipReport, CommandLimits
from gmt_ros.core.command_table import TargetMapper
from gmt_ros.core.contract import PolicyContract
from gmt_ros.core.fall_check import FallCheck
from gmt_ros.core.motion import MotionClip, window_from_clip
from gmt_ros.core.policy import TrackingPolicy
from gmt_ros.core.supervisor import Request, Supervisor, SupervisorConfig
from gmt_ros.graph import BRIDGE, node_parameters
from sim2sim import metrics
from sim2sim.g1_model import g1_index
from sim2sim.kinematics import KEY_BODIES, ReferenceKinematics
from sim2sim.simulator import G1Sim

# Called with (time in s, the simulator) at each frame time; used by the video renderer.
FrameHook = Callable[[float, G1Sim], None]

_TRACE_ERRORS = metrics.TickErrors._fields
# The bridge's writer rate (config/bridge.yaml command_rate_hz): how often it applies the limits.
_BRIDGE_YAML = node_parameters(BRIDGE)  # the bridge's settings: rate, limits, fall check, damping
BRIDGE_RATE_HZ = float(_BRIDGE_YAML["command_rate_hz"])
_CLIP_REASONS = ("joint_limit", "velocity_limit", "torque_limit")


@dataclass
class EpisodeTrace:
    """Per-policy-tick record of one episode (50 Hz), for plots and offline analysis.

    Row i is tick i, sampled just before the policy acts: ``time_s`` (N,); joint angles (N, 29,
    slot order) of the robot (ground truth), of the reference, and the policy's target (the
    command it then sent); pelvis height and roll/pitch (rad) of the robot and the reference;
    the four tick errors of ``sim2sim.metrics``; ``joint_tau`` (N, 29) the torque the motors were
    applying at that instant (the last 1 ms physics step's, after clipping). ``upright`` is False
    only on the last row of a fallen episode (the tick the fall or the command fault was
    detected: its errors are not part of the episode's averages). ``joint_mask``: joints the
    policy tracks and the clip supplies. ``tau_limit``: the motors' torque limits (29).
    ``sent_joint_pos`` (N, 29): the q the motors were sent on the tick's first bridge tick, after
    the command limits (the raw target without them; NaN when nothing was sent);
    ``clip_counts`` (N, 3): slot-ticks the limits clipped during the tick, per reason
    (joint_limit, velocity_limit, torque_limit: ``ClipReport``). Both are None in traces saved
    before they existed.
    """

    time_s: np.ndarray
    joint_pos: np.ndarray
    ref_joint_pos: np.ndarray
    target_joint_pos: np.ndarray
    joint_tau: np.ndarray
    root_height_m: np.ndarray
    ref_root_height_m: np.ndarray
    roll_rad: np.ndarray
    pitch_rad: np.ndarray
    ref_roll_rad: np.ndarray
    ref_pitch_rad: np.ndarray
    e_mpjpe_rad: np.ndarray
    e_mpkpe_mm: np.ndarray
    e_vel_mps: np.ndarray
    e_yaw_vel_radps: np.ndarray
    upright: np.ndarray
    joint_mask: np.ndarray
    tau_limit: np.ndarray
    joint_names: tuple[str, ...] = g1.JOINT_NAMES
    sent_joint_pos: np.ndarray | None = None
    clip_counts: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.time_s.shape[0])

    def save_npz(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {k: v for k, v in self.__dict__.items() if k != "joint_names" and v is not None}
        np.savez_compressed(path, joint_names=np.array(self.joint_names), **arrays)
        return path

    @classmethod
    def load_npz(cls, path: str | Path) -> EpisodeTrace:
        with np.load(path, allow_pickle=False) as data:
            fields = {k: data[k] for k in data.files if k != "joint_names"}
            names = tuple(str(n) for n in data["joint_names"])
        return cls(joint_names=names, **fields)


class _TraceRecorder:
    """Collects trace rows during the loop; ``finish()`` stacks them into an EpisodeTrace."""

    def __init__(self, joint_mask: np.ndarray):
        self.rows: dict[str, list] = {k: [] for k in (
            "time_s", "joint_pos", "ref_joint_pos", "target_joint_pos", "sent_joint_pos", "clip_counts",
            "joint_tau", "root_height_m",
            "ref_root_height_m", "roll_rad", "pitch_rad", "ref_roll_rad", "ref_pitch_rad", "upright",
            *_TRACE_ERRORS)}
        self.joint_mask = joint_mask

    def add(self, **values) -> None:
        for key, value in values.items():
            self.rows[key].append(value)

    def set_target(self, q: np.ndarray) -> None:
        self.rows["target_joint_pos"].append(np.asarray(q, dtype=np.float64).copy())

    def set_sent(self, q: np.ndarray | None, clips: ClipReport) -> None:
        """What the tick sent (None: nothing) and what the limits clipped during it."""
        self.rows["sent_joint_pos"].append(np.full(g1.NUM_BODY_JOINTS, np.nan) if q is None
                                           else np.asarray(q, dtype=np.float64).copy())
        self.rows["clip_counts"].append([getattr(clips, r) for r in _CLIP_REASONS])

    def end_tick(self) -> None:
        """The last row's tick ended the episode (a command fault): not upright, like a fall tick."""
        self.rows["upright"][-1] = False

    def finish(self) -> EpisodeTrace:
        n = len(self.rows["time_s"])
        for key in ("target_joint_pos", "sent_joint_pos"):
            rows = self.rows[key]
            while len(rows) < n:  # the fall tick sends no command
                rows.append(np.full(g1.NUM_BODY_JOINTS, np.nan))
        while len(self.rows["clip_counts"]) < n:
            self.rows["clip_counts"].append([0] * len(_CLIP_REASONS))
        arrays = {}
        for key, values in self.rows.items():
            if key == "clip_counts":
                arrays[key] = np.asarray(values, dtype=np.int64).reshape(n, len(_CLIP_REASONS))
            elif key in ("joint_pos", "ref_joint_pos", "target_joint_pos", "sent_joint_pos", "joint_tau"):
                arrays[key] = np.asarray(values, dtype=np.float64).reshape(n, g1.NUM_BODY_JOINTS)
            elif key == "upright":
                arrays[key] = np.asarray(values, dtype=bool).reshape(n)
            else:
                arrays[key] = np.asarray(values, dtype=np.float64).reshape(n)
        return EpisodeTrace(joint_mask=self.joint_mask.copy(), tau_limit=g1.TAU_MAX.astype(np.float64).copy(),
                            **arrays)


@dataclass
class EpisodeResult:
    """One episode's report. ``fell``/``fall_time_s`` also cover a command fault
    (``command_fault`` set): on the robot the supervisor then damps the motors and the robot goes
    down, so for success/upright purposes it is a fall at the fault's time. Likewise the bridge's
    fall check (``fall_detected`` set, the reason): the supervisor damps and the robot goes down.
    ``max_imu_tilt_rad``/``min_height_estimate_m``: the extremes the fall check saw (None without it).

    ``command_limits``: "bridge" (targets sent through ``CommandLimits.apply`` as the bridge
    does), "custom" (a given ``CommandLimits``) or "raw". ``clipped``: slot-ticks (bridge ticks x
    joints) the limits clipped, per reason, over the episode. ``max_target_excess_rad``: how far
    the policy's raw targets went beyond a joint limit at most (negative: always inside by that
    much), at ``max_target_excess_joint``, at ``max_target_excess_time_s``; measured in every mode.
    """

    clip: str
    policy: str
    seed: int
    fell: bool
    fall_time_s: float | None
    duration_s: float
    requested_s: float
    min_pelvis_height_m: float
    max_tilt_rad: float
    errors: dict
    policy_ticks: int
    randomization: dict | None = None  # the drawn DR values (DrawnParameters.as_dict()), if any
    trace: EpisodeTrace | None = field(default=None, repr=False)  # only with run_episode(trace=True)
    command_limits: str = "raw"
    command_fault: str | None = None
    clipped: ClipReport = field(default_factory=ClipReport)
    max_target_excess_rad: float = -math.inf
    max_target_excess_joint: str | None = None
    max_target_excess_time_s: float | None = None
    fall_detected: str | None = None  # the bridge's fall check stopped the episode (why)
    max_imu_tilt_rad: float | None = None  # the fall check's extremes over the states it saw
    min_height_estimate_m: float | None = None

    def as_dict(self) -> dict:
        """The JSON report (the trace is not part of it: save it with ``trace.save_npz``)."""
        out = {
            "clip": self.clip,
            "policy": self.policy,
            "seed": self.seed,
            "fell": self.fell,
            "fall_time_s": self.fall_time_s,
            "duration_s": round(self.duration_s, 4),
            "requested_s": round(self.requested_s, 4),
            "min_pelvis_height_m": round(self.min_pelvis_height_m, 4),
            "max_tilt_rad": round(self.max_tilt_rad, 4),
            "policy_ticks": self.policy_ticks,
            "command_limits": self.command_limits,
            "command_fault": self.command_fault,
            "fall_detected": self.fall_detected,
            "max_imu_tilt_rad": _round_or_none(self.max_imu_tilt_rad, 4),
            "min_height_estimate_m": _round_or_none(self.min_height_estimate_m, 4),
            "clipped": {r: getattr(self.clipped, r) for r in _CLIP_REASONS},
            "max_target_excess_rad": (round(self.max_target_excess_rad, 4)
                                      if math.isfinite(self.max_target_excess_rad) else None),
            "max_target_excess_joint": self.max_target_excess_joint,
            "max_target_excess_time_s": self.max_target_excess_time_s,
        }
        out.update({k: (round(v, 5) if math.isfinite(v) else None) for k, v in self.errors.items()})
        if self.randomization is not None:
            out["randomization"] = self.randomization
        return out

    def summary_line(self) -> str:
        e = self.errors
        if self.command_fault is not None:
            status = f"COMMAND FAULT at {self.fall_time_s:.2f} s ({self.command_fault})"
        elif self.fall_detected is not None:
            status = f"FALL DETECTED at {self.fall_time_s:.2f} s ({self.fall_detected})"
        else:
            status = f"FELL at {self.fall_time_s:.2f} s" if self.fell else "upright"
        line = (
            f"{self.clip}: {status} over {self.duration_s:.2f} s | E_mpjpe {e['e_mpjpe_rad']:.3f} rad"
            f" | E_mpkpe {e['e_mpkpe_mm']:.1f} mm | E_vel {e['e_vel_mps']:.3f} m/s"
            f" | E_yaw_vel {e['e_yaw_vel_radps']:.3f} rad/s | min pelvis {self.min_pelvis_height_m:.2f} m"
        )
        if math.isfinite(self.max_target_excess_rad):
            line += f" | target excess {self.max_target_excess_rad:+.2f} rad ({self.max_target_excess_joint})"
        if self.command_limits != "raw":
            c = self.clipped
            line += f" | clipped j/v/t {c.joint_limit}/{c.velocity_limit}/{c.torque_limit}"
        else:
            line += " | raw targets"
        return line


def _round_or_none(x: float | None, digits: int) -> float | None:
    return round(x, digits) if x is not None and math.isfinite(x) else None


def make_sim(seed: int = 0, dr=None) -> G1Sim:
    """The simulator of one episode: plain, or with domain randomisation ``dr`` drawn from ``seed``.

    ``dr``: None (plain), a preset name of config/randomization.yaml (``none``, ``gmt``, ``hard``),
    a YAML file of one preset, or already drawn ``DrawnParameters``.
    """
    if dr is None:
        return G1Sim(seed=seed)
    from sim2sim.randomization import DrawnParameters

    if isinstance(dr, DrawnParameters):
        return G1Sim(seed=seed, randomization=dr)
    return G1Sim.randomized(dr, seed)


class _FrameClock:
    """Physics-step indices of the frame times k / rate_hz that fall inside [0, end_step)."""

    def __init__(self, rate_hz: float, physics_dt: float, end_step: int):
        if not (math.isfinite(rate_hz) and rate_hz > 0):
            raise ValueError(f"frame rate must be positive, got {rate_hz}")
        self.rate_hz = float(rate_hz)
        self.physics_dt = physics_dt
        self.end_step = end_step
        self.k = 0

    def next_step(self) -> int | None:
        step = round(self.k / self.rate_hz / self.physics_dt)
        return step if step < self.end_step else None


def _advance(sim: G1Sim, start_step: int, n: int, clock: _FrameClock | None, hook: FrameHook | None) -> None:
    """``sim.step(n)``, stopping at each frame time on the way to call the hook (the split leaves
    the physics unchanged: one step is one step)."""
    if clock is None:
        sim.step(n)
        return
    done = 0
    while True:
        frame_step = clock.next_step()
        if frame_step is None or frame_step >= start_step + n:
            break
        if frame_step >= start_step + done:
            sim.step(frame_step - start_step - done)
            done = frame_step - start_step
            hook(frame_step * clock.physics_dt, sim)
        clock.k += 1
    sim.step(n - done)


# Send paths of ``gmt-ros eval/evaluate --send-path``: (command_limits, fall_check) of run_episode.
SEND_PATHS = {
    "bridge": ("bridge", "bridge"),  # the bridge's supervisor: stop band, speed and torque limits, fall check
    "range": ("range", "bridge"),    # the same with the joint-range clip of earlier versions
    "raw": ("raw", "off"),           # the policy's targets straight to the motors, no supervisor
}


def _resolve_limits(command_limits) -> tuple[CommandLimits | None, str]:
    if command_limits is None or (isinstance(command_limits, str) and command_limits == "raw"):
        return None, "raw"
    if isinstance(command_limits, str):
        if command_limits == "bridge":
            return bridge_limits(), "bridge"
        if command_limits == "range":  # no stop band: targets clipped to the joint range
            return bridge_limits(stop_torque_fraction=0.0), "range"
        raise ValueError(f"command_limits must be 'bridge', 'range', 'raw', None or a CommandLimits, "
                         f"got {command_limits!r}")
    if isinstance(command_limits, CommandLimits):
        return command_limits, "custom"
    raise TypeError(f"command_limits must be 'bridge', 'range', 'raw', None or a CommandLimits, "
                    f"got {type(command_limits).__name__}")


_HEIGHT_ESTIMATOR = None


def bridge_limits(stop_torque_fraction: float | None = None) -> CommandLimits:
    """The bridge's command limits as config/bridge.yaml sets them (gross margin, stop band);
    ``stop_torque_fraction`` overrides the YAML's (0: the joint-range clip)."""
    fraction = _BRIDGE_YAML["stop_torque_fraction"] if stop_torque_fraction is None else stop_torque_fraction
    return CommandLimits(gross_margin_rad=float(_BRIDGE_YAML["gross_margin_rad"]),
                         stop_torque=float(fraction) * g1.TAU_MAX)


def bridge_fall_check(**thresholds) -> FallCheck:
    """The bridge's fall check as config/bridge.yaml sets it (or with the given thresholds), with
    the pelvis height estimate (built once per process) if the bridge uses it."""
    global _HEIGHT_ESTIMATOR
    if _HEIGHT_ESTIMATOR is None:
        from gmt_ros.core.height_estimate import PelvisHeightEstimator

        _HEIGHT_ESTIMATOR = PelvisHeightEstimator()
    settings = {"tilt_rad": float(_BRIDGE_YAML["fall_tilt_rad"]), "height_m": float(_BRIDGE_YAML["fall_height_m"]),
                "height_estimate": _HEIGHT_ESTIMATOR if _BRIDGE_YAML["fall_height_check"] else None}
    return FallCheck(**(settings | thresholds))


def _resolve_fall_check(fall_check) -> FallCheck | None:
    if fall_check is None or (isinstance(fall_check, str) and fall_check == "off"):
        return None
    if isinstance(fall_check, str):
        if fall_check == "bridge":
            return bridge_fall_check()
        raise ValueError(f"fall_check must be 'bridge', 'off', None or a FallCheck, got {fall_check!r}")
    if isinstance(fall_check, FallCheck):
        return fall_check
    raise TypeError(f"fall_check must be 'bridge', 'off', None or a FallCheck, got {type(fall_check).__name__}")


_OFF = FallCheck(tilt_rad=math.inf, height_m=-math.inf, overspeed_factor=1e9)  # thresholds never reached


def supervised_send_path(contract: PolicyContract, limits: CommandLimits, fall_check: FallCheck | None,
                         start_state, hold_at: float, hold_dt: float) -> Supervisor:
    """The bridge's supervisor for ``contract`` (its damping as config/bridge.yaml sets it;
    ``fall_check`` None: never fires), brought to policy mode the way an operator does it:
    start-up check of a 29-DoF robot with every slot live, start (damping), start (ramp, zero
    length here), a hold tick at
    ``hold_at - hold_dt`` and ``hold_at`` (the velocity limit measures the first policy target
    from that hold pose), policy. ``start_state`` is the robot's state meanwhile."""
    config = SupervisorConfig(ramp_time_s=0.0, damping_kd=float(_BRIDGE_YAML["damping_kd"]))
    sup = Supervisor(contract.command_table, config, limits, fall_check=fall_check or _OFF)
    t0 = hold_at - 2 * hold_dt
    sup.startup_check(min(g1.MODE_MACHINE_29DOF), range(g1.NUM_BODY_JOINTS), now=t0)
    for req in (Request.START, Request.START):
        sup.request(req, t0)
    for now in (hold_at - hold_dt, hold_at):  # ramp (done at once) -> hold
        sup.tick(now, start_state, now, None, None)
    sup.request(Request.POLICY, hold_at)
    return sup


def _is_command_fault(fault: str) -> bool:
    """A supervisor fault from CommandLimits (``Supervisor.tick``: "unsafe command in ..."), as
    opposed to its fall check."""
    return fault.startswith("unsafe command")


def _add_clips(total: ClipReport, report: ClipReport) -> None:
    for reason in _CLIP_REASONS:
        setattr(total, reason, getattr(total, reason) + getattr(report, reason))


def run_episode(
    contract: PolicyContract,
    clip: MotionClip,
    seconds: float | None = None,
    seed: int = 0,
    start: str = "clip",
    sim: G1Sim | None = None,
    policy: TrackingPolicy | None = None,
    *,
    dr=None,
    trace: bool = False,
    frame_hook: FrameHook | None = None,
    frame_rate_hz: float = 30.0,
    after_fall_s: float = 0.0,
    command_limits: CommandLimits | str | None = "bridge",
    limits_rate_hz: float = BRIDGE_RATE_HZ,
    fall_check: FallCheck | str | None = "bridge",
) -> EpisodeResult:
    """Track ``clip`` for ``seconds`` (default: the whole clip) and measure it.

    ``start="clip"`` starts the robot in the clip's first frame (pose and velocities);
    ``"default"`` starts in the policy's default standing pose.
    ``dr``: domain randomisation (see :func:`make_sim`), drawn from ``seed``; its drawn values are
    reported in ``result.randomization``. Give ``sim`` or ``dr``, not both (a given sim's own
    randomisation, if any, is reported).
    ``trace=True`` records an :class:`EpisodeTrace` in ``result.trace``.
    ``frame_hook(t, sim)`` is called at t = k / ``frame_rate_hz`` (physics-step exact) from 0 to
    the end of the episode; ``after_fall_s`` keeps simulating (policy still acting, no metrics)
    this long after a fall, so a video shows it (after a command fault: the motors damped).
    ``command_limits``: "bridge" (default) sends the targets through the bridge's ``Supervisor``
    with ``CommandLimits()`` at ``limits_rate_hz`` (the bridge's 500 Hz writer: each policy target
    is applied 10 times, each with the state measured then); "range" with the joint-range clip of
    earlier versions; a ``CommandLimits`` with those limits; None or "raw" sends the policy's
    targets straight to the motors, no supervisor. The supervisor held the default pose before
    the policy took over: the velocity limit measures the first target from it for
    ``start="default"``, and does not bind on it for ``start="clip"``.
    ``fall_check``: "bridge" (default) is the supervisor's fall check (tilt, overspeed, pelvis
    height estimate; ``bridge_fall_check()``) on the state of every bridge tick; a detection
    ends the episode as a fall (``fall_detected``: on the robot the supervisor damps); a
    ``FallCheck`` uses that one (e.g. thresholds off, to measure its extremes); None or "off": none.
    With raw targets a fall check only watches (a detector, no supervisor).
    """
    if start not in ("clip", "default"):
        raise ValueError(f"start must be 'clip' or 'default', got {start!r}")
    limits, limits_name = _resolve_limits(command_limits)
    checker = _resolve_fall_check(fall_check)
    duration = clip.duration if seconds is None else float(seconds)
    if not duration > 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    if not (math.isfinite(after_fall_s) and after_fall_s >= 0):
        raise ValueError(f"after_fall_s must be >= 0, got {after_fall_s}")
    if sim is not None and dr is not None:
        raise ValueError("give either a simulator (sim=) or a randomisation (dr=), not both")
    sim = sim or make_sim(seed, dr)
    control_dt = 1.0 / contract.rate_hz
    physics_dt = sim.model.opt.timestep
    substeps = int(round(control_dt / physics_dt))
    if abs(substeps * physics_dt - control_dt) > 1e-9:
        raise ValueError(f"policy period {control_dt} s is not a multiple of the physics step {physics_dt} s")
    bridge_steps = substeps
    if limits is not None or checker is not None:
        if not (math.isfinite(limits_rate_hz) and limits_rate_hz > 0):
            raise ValueError(f"limits_rate_hz must be positive, got {limits_rate_hz}")
        bridge_steps = int(round(1.0 / limits_rate_hz / physics_dt))
        if bridge_steps < 1 or abs(bridge_steps * physics_dt * limits_rate_hz - 1.0) > 1e-9 or substeps % bridge_steps:
            raise ValueError(f"limits_rate_hz {limits_rate_hz:g} must divide the physics rate "
                             f"{1.0 / physics_dt:g} Hz and be a multiple of the policy rate {contract.rate_hz:g} Hz")
    excess_limits = limits or CommandLimits()  # the raw targets' excess is measured in every mode

    if start == "clip":
        f0 = clip.sample(0.0)
        sim.reset(root_pos=f0.root_pos[0], root_quat=f0.root_quat[0], joint_pos=f0.joint_pos[0],
                  root_lin_vel=f0.root_lin_vel[0], root_ang_vel=f0.root_ang_vel[0], joint_vel=f0.joint_vel[0])
    else:
        sim.reset()

    policy = policy or TrackingPolicy(contract)
    policy.reset(sim.state())
    sup = None
    if limits is not None:
        # The supervisor held the default pose until the policy took over: just before t = 0 from
        # the default pose; from the clip's first frame, as if long before (its first target is not
        # speed-limited from a pose the robot is not in).
        bridge_dt = bridge_steps * physics_dt
        sup = supervised_send_path(contract, limits, checker, sim.state(),
                                   hold_at=-bridge_dt if start == "default" else -1.0, hold_dt=bridge_dt)
        checker = sup.fall_check if checker is not None else None
        mapper, policy_names = TargetMapper(contract.command_table), tuple(contract.joint_names)
    ref_kin = ReferenceKinematics(sim.model, KEY_BODIES)
    true_joint_qpos = g1_index(sim.model).joint_qpos  # ground truth: sim.state() may be disturbed
    policy_slots = np.asarray(contract.slots)
    joint_mask = np.zeros(len(clip.joint_mask), bool)
    joint_mask[policy_slots] = True
    joint_mask &= np.asarray(clip.joint_mask, bool)

    errors = metrics.TrackingErrors()
    recorder = _TraceRecorder(joint_mask) if trace else None
    n_ticks = math.floor(duration / control_dt + 1e-9)
    extra_ticks = math.ceil(after_fall_s / control_dt - 1e-9)
    clock = None
    if frame_hook is not None:
        clock = _FrameClock(frame_rate_hz, physics_dt, end_step=n_ticks * substeps)
    min_height = math.inf
    max_tilt = 0.0
    fall_time = None
    command_fault = None
    fall_detected = None
    damped = False  # the motors hold the damping command (after a command fault)
    clipped = ClipReport()
    max_excess, max_excess_joint, max_excess_time = -math.inf, None, None
    ticks = 0
    tick = 0
    end_tick = n_ticks
    while tick < end_tick:
        t = tick * control_dt
        state = sim.state()  # once per tick: under DR each read draws noise/delay
        scoring = fall_time is None
        tick_err = None
        if scoring:
            root_pos, root_quat = sim.root_pose()
            roll, pitch, _ = rotations.to_rpy(root_quat)
            min_height = min(min_height, float(root_pos[2]))
            max_tilt = max(max_tilt, abs(float(roll)), abs(float(pitch)))
            fallen = metrics.has_fallen(float(root_pos[2]), float(roll), float(pitch))
            ref = clip.sample(t)
            lin_vel, ang_vel = sim.root_velocity()
            body_pos = sim.body_positions(KEY_BODIES)
            ref_body_pos = ref_kin.body_positions(ref.root_pos[0], ref.root_quat[0], ref.joint_pos[0])
            true_q = sim.data.qpos[true_joint_qpos].copy()
            tick_err = metrics.tick_errors(
                joint_pos=true_q,
                ref_joint_pos=ref.joint_pos[0],
                joint_mask=joint_mask,
                body_rel=metrics.heading_relative(body_pos, root_pos, root_quat),
                ref_body_rel=metrics.heading_relative(ref_body_pos, ref.root_pos[0], ref.root_quat[0]),
                root_vel_heading=metrics.in_heading_frame(lin_vel, root_quat),
                ref_root_vel_heading=metrics.in_heading_frame(ref.root_lin_vel[0], ref.root_quat[0]),
                yaw_rate=float(ang_vel[2]),
                ref_yaw_rate=float(ref.root_ang_vel[0][2]),
            )
            if recorder is not None:
                ref_roll, ref_pitch, _ = rotations.to_rpy(ref.root_quat[0])
                recorder.add(time_s=t, joint_pos=true_q, ref_joint_pos=np.array(ref.joint_pos[0]),
                             joint_tau=sim.applied_torque(), root_height_m=float(root_pos[2]),
                             ref_root_height_m=float(ref.root_pos[0][2]), roll_rad=float(roll),
                             pitch_rad=float(pitch), ref_roll_rad=float(ref_roll), ref_pitch_rad=float(ref_pitch),
                             upright=not fallen, **tick_err._asdict())
            if fallen:
                fall_time = t
                tick_err = None  # the fall tick is not scored
                if extra_ticks == 0:
                    break
                end_tick = tick + extra_ticks  # keep going a little, for the video only
                if clock is not None:
                    clock.end_step = end_tick * substeps

        if damped:  # after a command fault the supervisor damps: no policy any more
            _advance(sim, tick * substeps, substeps, clock, frame_hook)
            tick += 1
            continue

        live = tick_err is not None  # a scored tick: upright at its start, policy in control
        window = window_from_clip(clip, clip_time=t, start_time=t, conventions=contract.reference)
        command = policy.step(state, window, now=t)
        if live:
            excess = excess_limits.target_excess(command)
            worst = int(np.argmax(excess))
            if excess[worst] > max_excess:
                max_excess, max_excess_joint, max_excess_time = float(excess[worst]), g1.JOINT_NAMES[worst], t
        tick_clips = ClipReport()
        sent_q = None
        fault_at = None
        done = substeps
        if sup is None and checker is None:  # raw targets, nothing watching
            sim.set_command(command)
            sent_q = command.q
            _advance(sim, tick * substeps, substeps, clock, frame_hook)
        else:
            # What the bridge rebuilds from the policy node's JointState (names, positions).
            bridge_command = command if sup is None else mapper.command(policy_names, command.q[policy_slots])
            done = 0
            while done < substeps:
                # The tick's first bridge tick sees the state the policy just read; later ones a new read.
                now = t + done * physics_dt
                seen = state if done == 0 else sim.state()
                if sup is not None:
                    decision = sup.tick(now, seen, now, bridge_command, t)
                    out, report, fault = decision.command, decision.clip, decision.fault
                else:  # raw targets under a fall detector
                    fault, out, report = checker.reason(seen), command, ClipReport()
                    if fault:
                        out = JointCommand.damping()
                if fault:
                    fault_at = (now, fault, not _is_command_fault(fault))
                    # The supervisor latched the fault and damps the motors from this bridge tick on.
                    sim.set_command(out)
                    damped = True
                    break
                sim.set_command(out)
                _add_clips(tick_clips, report)
                if sent_q is None:
                    sent_q = out.q
                _advance(sim, tick * substeps + done, bridge_steps, clock, frame_hook)
                done += bridge_steps
        if live:
            _add_clips(clipped, tick_clips)
            if recorder is not None:
                recorder.set_target(command.q)
                recorder.set_sent(sent_q, tick_clips)
            if fault_at is None:
                errors.add_tick(tick_err)
                ticks += 1
            else:  # ends the episode like a fall: this tick is not part of the averages
                if fault_at[2]:
                    fall_time, fall_detected = fault_at[:2]
                else:
                    fall_time, command_fault = fault_at[:2]
                if recorder is not None:
                    recorder.end_tick()
                if extra_ticks == 0:
                    break
                end_tick = tick + extra_ticks
                if clock is not None:
                    clock.end_step = end_tick * substeps
        if done < substeps:
            _advance(sim, tick * substeps + done, substeps - done, clock, frame_hook)
        tick += 1

    randomization = getattr(sim, "randomization", None)
    return EpisodeResult(
        clip=clip.name,
        policy=contract.name,
        seed=seed,
        fell=fall_time is not None,
        fall_time_s=fall_time,
        duration_s=ticks * control_dt,
        requested_s=duration,
        min_pelvis_height_m=min_height,
        max_tilt_rad=max_tilt,
        errors=errors.summary(),
        policy_ticks=ticks,
        randomization=randomization.as_dict() if randomization is not None else None,
        trace=recorder.finish() if recorder is not None else None,
        command_limits=limits_name,
        command_fault=command_fault,
        clipped=clipped,
        max_target_excess_rad=max_excess,
        max_target_excess_joint=max_excess_joint,
        max_target_excess_time_s=max_excess_time,
        fall_detected=fall_detected,
        max_imu_tilt_rad=checker.max_tilt_rad if checker is not None else None,
        min_height_estimate_m=checker.min_height_m if checker is not None else None,
    )
