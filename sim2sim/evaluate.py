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

import numpy as np

from gmt_ros.core import g1, rotations
from gmt_ros.core.command import JointCommand
from gmt_ros.core.command_limits import ClipReport, CommandLimits
from gmt_ros.core.command_table import TargetMapper
from gmt_ros.core.contract import PolicyContract
from gmt_ros.core.fall_check import FallCheck
from gmt_ros.core.motion import MotionClip, window_from_clip
from gmt_ros.core.policy import TrackingPolicy
from sim2sim import metrics
from sim2sim.episode_result import EpisodeResult
from sim2sim.episode_trace import EpisodeTrace, TraceRecorder
from sim2sim.g1_model import g1_index
from sim2sim.kinematics import KEY_BODIES, ReferenceKinematics
from sim2sim.send_path import (
    BRIDGE_RATE_HZ,
    SEND_PATHS,
    add_clips,
    bridge_fall_check,
    bridge_limits,
    is_command_fault,
    resolve_fall_check,
    resolve_limits,
    supervised_send_path,
)
from sim2sim.simulator import G1Sim

# The episode's parts live in their own modules (trace, result, send path); their users import them here too.
__all__ = ["BRIDGE_RATE_HZ", "SEND_PATHS", "EpisodeResult", "EpisodeTrace", "FrameHook", "bridge_fall_check",
           "bridge_limits", "make_sim", "run_episode", "supervised_send_path"]

# Called with (time in s, the simulator) at each frame time; used by the video renderer.
FrameHook = Callable[[float, G1Sim], None]


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
    limits, limits_name = resolve_limits(command_limits)
    checker = resolve_fall_check(fall_check)
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
    recorder = TraceRecorder(joint_mask) if trace else None
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
                    fault_at = (now, fault, not is_command_fault(fault))
                    # The supervisor latched the fault and damps the motors from this bridge tick on.
                    sim.set_command(out)
                    damped = True
                    break
                sim.set_command(out)
                add_clips(tick_clips, report)
                if sent_q is None:
                    sent_q = out.q
                _advance(sim, tick * substeps + done, bridge_steps, clock, frame_hook)
                done += bridge_steps
        if live:
            add_clips(clipped, tick_clips)
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
