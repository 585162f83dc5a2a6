"""Closed-loop evaluation in one process: tracking policy at 50 Hz, G1 physics at 1 kHz.

Rates: physics 1000 Hz (``G1Sim``), policy ``contract.rate_hz`` (50 Hz: 20 physics steps per
tick), metrics sampled once per policy tick. No ROS, no DDS: this is the fast, deterministic
reference loop that ``gmt-ros eval`` runs; the node graph (``gmt-ros sim2sim``) is measured
against the same metrics.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gmt_ros.core import rotations
from gmt_ros.core.contract import PolicyContract
from gmt_ros.core.motion import MotionClip, window_from_clip
from gmt_ros.core.policy import TrackingPolicy
from sim2sim import metrics
from sim2sim.kinematics import KEY_BODIES, ReferenceKinematics
from sim2sim.simulator import G1Sim


@dataclass
class EpisodeResult:
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

    def as_dict(self) -> dict:
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
        }
        out.update({k: (round(v, 5) if math.isfinite(v) else None) for k, v in self.errors.items()})
        return out

    def summary_line(self) -> str:
        e = self.errors
        status = f"FELL at {self.fall_time_s:.2f} s" if self.fell else "upright"
        return (
            f"{self.clip}: {status} over {self.duration_s:.2f} s | E_mpjpe {e['e_mpjpe_rad']:.3f} rad"
            f" | E_mpkpe {e['e_mpkpe_mm']:.1f} mm | E_vel {e['e_vel_mps']:.3f} m/s"
            f" | E_yaw_vel {e['e_yaw_vel_radps']:.3f} rad/s | min pelvis {self.min_pelvis_height_m:.2f} m"
        )


def run_episode(
    contract: PolicyContract,
    clip: MotionClip,
    seconds: float | None = None,
    seed: int = 0,
    start: str = "clip",
    sim: G1Sim | None = None,
    policy: TrackingPolicy | None = None,
) -> EpisodeResult:
    """Track ``clip`` for ``seconds`` (default: the whole clip) and measure it.

    ``start="clip"`` starts the robot in the clip's first frame (pose and velocities);
    ``"default"`` starts in the policy's default standing pose.
    """
    if start not in ("clip", "default"):
        raise ValueError(f"start must be 'clip' or 'default', got {start!r}")
    duration = clip.duration if seconds is None else float(seconds)
    if not duration > 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    sim = sim or G1Sim(seed=seed)
    control_dt = 1.0 / contract.rate_hz
    substeps = int(round(control_dt / sim.model.opt.timestep))
    if abs(substeps * sim.model.opt.timestep - control_dt) > 1e-9:
        raise ValueError(f"policy period {control_dt} s is not a multiple of the physics step {sim.model.opt.timestep} s")

    if start == "clip":
        f0 = clip.sample(0.0)
        sim.reset(root_pos=f0.root_pos[0], root_quat=f0.root_quat[0], joint_pos=f0.joint_pos[0],
                  root_lin_vel=f0.root_lin_vel[0], root_ang_vel=f0.root_ang_vel[0], joint_vel=f0.joint_vel[0])
    else:
        sim.reset()

    policy = policy or TrackingPolicy(contract)
    policy.reset(sim.state())
    ref_kin = ReferenceKinematics(sim.model, KEY_BODIES)
    policy_slots = np.asarray(contract.slots)
    joint_mask = np.zeros(len(clip.joint_mask), bool)
    joint_mask[policy_slots] = True
    joint_mask &= np.asarray(clip.joint_mask, bool)

    errors = metrics.TrackingErrors()
    n_ticks = int(math.floor(duration / control_dt + 1e-9))
    min_height = math.inf
    max_tilt = 0.0
    fall_time = None
    ticks = 0
    for tick in range(n_ticks):
        t = tick * control_dt
        state = sim.state()
        root_pos, root_quat = sim.root_pose()
        roll, pitch, _ = rotations.to_rpy(root_quat)
        min_height = min(min_height, float(root_pos[2]))
        max_tilt = max(max_tilt, abs(float(roll)), abs(float(pitch)))
        if metrics.has_fallen(float(root_pos[2]), float(roll), float(pitch)):
            fall_time = t
            break

        ref = clip.sample(t)
        lin_vel, ang_vel = sim.root_velocity()
        body_pos = sim.body_positions(KEY_BODIES)
        ref_body_pos = ref_kin.body_positions(ref.root_pos[0], ref.root_quat[0], ref.joint_pos[0])
        errors.add(
            joint_pos=state.joint_pos,
            ref_joint_pos=ref.joint_pos[0],
            joint_mask=joint_mask,
            body_rel=metrics.heading_relative(body_pos, root_pos, root_quat),
            ref_body_rel=metrics.heading_relative(ref_body_pos, ref.root_pos[0], ref.root_quat[0]),
            root_vel_heading=metrics.in_heading_frame(lin_vel, root_quat),
            ref_root_vel_heading=metrics.in_heading_frame(ref.root_lin_vel[0], ref.root_quat[0]),
            yaw_rate=float(ang_vel[2]),
            ref_yaw_rate=float(ref.root_ang_vel[0][2]),
        )

        window = window_from_clip(clip, clip_time=t, start_time=t)
        sim.set_command(policy.step(state, window, now=t))
        sim.step(substeps)
        ticks += 1

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
    )
