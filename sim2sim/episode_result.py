"""What an evaluation episode reports (``EpisodeResult``: falls, command faults, tracking errors, the
send path's clipping; ``as_dict`` for JSON, ``summary_line`` for the console)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from gmt_ros.core.command_limits import ClipReport
from sim2sim.episode_trace import EpisodeTrace
from sim2sim.send_path import CLIP_REASONS


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
            "clipped": {r: getattr(self.clipped, r) for r in CLIP_REASONS},
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
