"""The simulated robot's statistics and its JSON report (``SimRobotServer.report()``): lowcmd
received/accepted/rate, bad CRC, mode_machine mismatches, unreadable commands, time of the last
command, command gaps; for every accepted command the time since the latest lowstate write (the
stack's reaction latency, as percentiles); lowstate rate; real-time factor, overruns, chunk work
time; minimum pelvis height and the fall flag."""
from __future__ import annotations

import collections
import math
from dataclasses import dataclass, field

import numpy as np

from sim2sim.robot_config import SimRobotConfig


@dataclass
class RobotStats:
    """What the simulated robot counts while it runs (under the server's stats lock)."""

    lowcmd_received: int = 0
    lowcmd_accepted: int = 0
    bad_crc: int = 0
    mode_machine_mismatch: int = 0
    invalid: int = 0
    first_cmd_wall: float | None = None  # perf_counter
    last_cmd_wall: float | None = None
    last_cmd_unix: float | None = None
    last_cmd_sim_time: float | None = None
    command_gaps: int = 0
    max_command_gap_s: float = 0.0
    in_gap: bool = False
    latency_s: collections.deque = field(default_factory=collections.deque)
    work_s: collections.deque = field(default_factory=lambda: collections.deque(maxlen=20000))
    lowstate_published: int = 0
    write_failures: int = 0
    physics_steps: int = 0
    overruns: int = 0
    max_lag_s: float = 0.0
    skipped_s: float = 0.0
    min_pelvis_height_m: float = math.inf
    min_pelvis_height_after_hold_m: float = math.inf
    max_tilt_rad: float = 0.0
    fell: bool = False
    fall_time_s: float | None = None
    out_of_limit: int = 0  # accepted commands with something outside CommandLimits (should stay 0)
    out_of_limit_reasons: list = field(default_factory=list)  # the first few, with the sim time


def _rounded(x: float | None) -> float | None:
    """JSON-friendly: None for missing or infinite values."""
    return round(x, 4) if x is not None and math.isfinite(x) else None


def _percentiles_ms(values) -> dict:
    if not values:
        return {"count": 0}
    a = np.asarray(values) * 1000.0
    return {
        "count": int(a.size),
        "mean": round(float(a.mean()), 4),
        "p50": round(float(np.percentile(a, 50)), 4),
        "p90": round(float(np.percentile(a, 90)), 4),
        "p99": round(float(np.percentile(a, 99)), 4),
        "max": round(float(a.max()), 4),
    }


def build_report(cfg: SimRobotConfig, st: RobotStats, *, start_pose: str, sim_time: float, wall: float,
                 end: float, root_pos, root_quat, fault_injection: dict | None, randomization: dict) -> dict:
    """The report of a run: ``st`` is a copy of the stats taken at perf_counter time ``end``, after
    ``wall`` seconds of wall clock and ``sim_time`` of simulation."""
    cmd_span = (st.last_cmd_wall - st.first_cmd_wall) if st.lowcmd_accepted > 1 else 0.0
    last_gap = (end - st.last_cmd_wall) if st.last_cmd_wall is not None else None
    return {
        "config": {
            "domain": cfg.domain,
            "interface": cfg.interface,
            "mode_machine": cfg.mode_machine,
            "physics_dt": cfg.physics_dt,
            "lowstate_hz": round(1.0 / (cfg.state_every_steps * cfg.physics_dt), 3),
            "hold_start_s": cfg.hold_start_s,
            "hold_until_release": cfg.hold_until_release,
            "command_timeout_s": cfg.command_timeout_s,
            "remote_script": [p.spec() for p in cfg.remote_script],
            "start_pose": start_pose,
            "seed": cfg.seed,
        },
        "sim_time_s": round(sim_time, 6),
        "wall_time_s": round(wall, 6),
        "real_time_factor": round(sim_time / wall, 4) if wall > 0 else None,
        "physics_steps": st.physics_steps,
        "pacing": {"overruns": st.overruns, "max_lag_ms": round(st.max_lag_s * 1000, 3),
                   "skipped_s": round(st.skipped_s, 4), "chunk_work_ms": _percentiles_ms(st.work_s)},
        "lowstate": {"published": st.lowstate_published, "write_failures": st.write_failures,
                     "rate_hz": round(st.lowstate_published / wall, 2) if wall > 0 else None},
        "lowcmd": {
            "received": st.lowcmd_received,
            "accepted": st.lowcmd_accepted,
            "rate_hz": round((st.lowcmd_accepted - 1) / cmd_span, 2) if cmd_span > 0 else None,
            "bad_crc": st.bad_crc,
            "mode_machine_mismatch": st.mode_machine_mismatch,
            "invalid": st.invalid,
            "last_sim_time_s": _rounded(st.last_cmd_sim_time),
            "last_unix_time": st.last_cmd_unix,
            "gaps_over_timeout": st.command_gaps,
            "max_gap_s": round(max(st.max_command_gap_s, last_gap or 0.0), 4),
            "silent_at_end_s": _rounded(last_gap),
            "out_of_limit": st.out_of_limit,
            "out_of_limit_first": list(st.out_of_limit_reasons),
        },
        "state_to_command_latency_ms": _percentiles_ms(st.latency_s),
        "fault_injection": fault_injection,
        "randomization": {"preset": cfg.dr, "seed": cfg.seed, **randomization},
        "robot": {
            "min_pelvis_height_m": _rounded(st.min_pelvis_height_m),
            "min_pelvis_height_after_hold_m": _rounded(st.min_pelvis_height_after_hold_m),
            "max_tilt_after_hold_rad": round(st.max_tilt_rad, 4),
            "fell": st.fell,
            "fall_time_s": _rounded(st.fall_time_s),
            "final_root_pos": [round(float(x), 4) for x in root_pos],
            "final_root_quat": [round(float(x), 5) for x in root_quat],
        },
    }


def summary_line(r: dict) -> str:
    """One line for the console from a report."""
    c = r["lowcmd"]
    return (
        f"sim2sim robot: {r['sim_time_s']:.2f} s sim in {r['wall_time_s']:.2f} s wall "
        f"(real-time factor {r['real_time_factor']}, {r['pacing']['overruns']} overruns), "
        f"lowstate {r['lowstate']['rate_hz']} Hz, lowcmd {c['accepted']} accepted ({c['rate_hz']} Hz), "
        f"{c['bad_crc']} bad CRC, {c['mode_machine_mismatch']} mode_machine mismatches, "
        f"min pelvis {r['robot']['min_pelvis_height_m']} m, fell {r['robot']['fell']}"
    )
