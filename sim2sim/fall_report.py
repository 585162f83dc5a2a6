"""Calibration of the supervisor's fall check (``gmt_ros.core.fall_check``: pelvis tilt from the
IMU and the pelvis height estimate).

The bridge damps the robot when the pelvis tilts past ``fall_tilt_rad`` or the height estimate
drops below ``fall_height_m``. Damping a robot that was still tracking drops it: the thresholds
must sit outside what healthy tracking of the clips reaches (the reference motions themselves lean
the pelvis up to 49 deg, gmt/airkick_stand) and inside what a fall passes through on its way to
the floor.

For each clip x start x DR preset x seed this runs the episode in ``sim2sim.evaluate`` with the
fall check measuring only (thresholds off) and the bridge's command limits, and reports the
largest IMU tilt and the lowest height estimate of the runs that stayed upright (the evaluation's
own criterion: pelvis above 0.30 m, |roll| and |pitch| under 1.2 rad), and for the runs that fell,
how long before that criterion the recommended thresholds would have fired. One process.

    python -m sim2sim.fall_report     # every clip, both starts, DR none + gmt and hard seeds 0-4
    python -m sim2sim.fall_report --clips gmt/squat --dr none --json out.json
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass

import numpy as np

from gmt_ros.core.fall_check import FALL_HEIGHT_M, FALL_TILT_RAD

TILT_MARGIN_RAD = 0.15  # recommended tilt >= the worst upright tilt + this (about 9 deg)
HEIGHT_MARGIN_M = 0.05  # recommended height <= the lowest upright estimate - this
TILT_STEP_RAD = 0.05
HEIGHT_STEP_M = 0.05


@dataclass
class Row:
    clip: str
    start: str
    dr: str
    seed: int
    fell: bool
    fall_time_s: float | None
    ended_by: str | None  # a command fault, if that ended it
    max_imu_tilt_rad: float
    min_height_estimate_m: float
    reference_max_tilt_rad: float
    reference_min_height_m: float
    duration_s: float

    def crossing_s(self, threshold: float) -> float | None:
        """The first policy tick (s) whose tilt exceeded ``threshold`` (ground truth), or None."""
        above = np.flatnonzero(self._tilt > threshold)
        return float(self._time[above[0]]) if above.size else None


def _inclination(roll, pitch):
    return np.arccos(np.clip(np.cos(roll) * np.cos(pitch), -1.0, 1.0))


def measure(contract, clip, start: str, dr: str | None, seed: int, policy=None, seconds: float | None = None) -> Row:
    from sim2sim.evaluate import bridge_fall_check, run_episode

    dr_arg = None if dr in (None, "none") else dr
    r = run_episode(contract, clip, seconds, seed=seed, start=start, dr=dr_arg, policy=policy, trace=True,
                    fall_check=bridge_fall_check(tilt_rad=math.inf, height_m=-math.inf))
    tr = r.trace
    row = Row(clip=clip.name or "?", start=start, dr=dr or "none", seed=seed, fell=r.fell, fall_time_s=r.fall_time_s,
               ended_by=r.command_fault, max_imu_tilt_rad=float(r.max_imu_tilt_rad),
               min_height_estimate_m=float(r.min_height_estimate_m),
               reference_max_tilt_rad=float(np.max(_inclination(tr.ref_roll_rad, tr.ref_pitch_rad))),
               reference_min_height_m=float(np.min(tr.ref_root_height_m)),
               duration_s=r.requested_s)
    row._time, row._tilt = tr.time_s, _inclination(tr.roll_rad, tr.pitch_rad)
    return row


def recommend(rows) -> tuple[float, float]:
    """(tilt rad, height m) on the steps: beyond the worst upright run's extremes and the
    reference motions' own (a policy tracking them exactly goes there), by the margins."""
    upright = [r for r in rows if not r.fell]
    if not upright:
        raise ValueError("no run stayed upright: nothing to calibrate on")
    tilt = max(max(r.max_imu_tilt_rad, r.reference_max_tilt_rad) for r in upright) + TILT_MARGIN_RAD
    height = min(min(r.min_height_estimate_m, r.reference_min_height_m) for r in upright) - HEIGHT_MARGIN_M
    return (TILT_STEP_RAD * math.ceil(tilt / TILT_STEP_RAD - 1e-9),
            HEIGHT_STEP_M * math.floor(height / HEIGHT_STEP_M + 1e-9))


def table_markdown(rows) -> str:
    lines = ["| clip | start | DR | seed | fell at s | max IMU tilt deg | reference max tilt deg | min height estimate m | reference min height m |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        fell = "–" if not r.fell else f"{r.fall_time_s:.2f}" + (" (command fault)" if r.ended_by else "")
        lines.append(f"| {r.clip} | {r.start} | {r.dr} | {r.seed} | {fell} | {math.degrees(r.max_imu_tilt_rad):.1f} | "
                     f"{math.degrees(r.reference_max_tilt_rad):.1f} | {r.min_height_estimate_m:.3f} | "
                     f"{r.reference_min_height_m:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    from sim2sim.sweep import add_sweep_arguments, run_sweep, sweep_inputs

    ap = argparse.ArgumentParser(prog="python -m sim2sim.fall_report", description=__doc__.split("\n\n")[0])
    add_sweep_arguments(ap)
    args = ap.parse_args(argv)

    contract, policy, clips, plan = sweep_inputs(args)
    rows = run_sweep(
        plan, lambda name, start, dr, seed: measure(contract, clips[name], start, dr, seed, policy=policy,
                                                    seconds=args.seconds),
        lambda row: (f"{f'FELL at {row.fall_time_s:.2f} s' if row.fell else 'upright'}, max IMU tilt "
                     f"{math.degrees(row.max_imu_tilt_rad):.1f} deg, min height estimate "
                     f"{row.min_height_estimate_m:.3f} m"))

    tilt, height = recommend(rows)
    upright = [r for r in rows if not r.fell]
    fallen = [r for r in rows if r.fell and not r.ended_by]
    worst_tilt = max(upright, key=lambda r: r.max_imu_tilt_rad)
    lowest = min(upright, key=lambda r: r.min_height_estimate_m)
    print(table_markdown(rows))
    print(f"{len(upright)} of {len(rows)} runs upright; worst upright IMU tilt {math.degrees(worst_tilt.max_imu_tilt_rad):.1f} deg "
          f"({worst_tilt.clip}, start {worst_tilt.start}, DR {worst_tilt.dr} seed {worst_tilt.seed}); lowest upright height "
          f"estimate {lowest.min_height_estimate_m:.3f} m ({lowest.clip}, start {lowest.start}, DR {lowest.dr} seed {lowest.seed})")
    for thr, label in ((FALL_TILT_RAD, "current"), (tilt, "recommended")):
        false_pos = sum(r.max_imu_tilt_rad > thr for r in upright)
        print(f"{label} fall_tilt_rad {thr:.2f} ({math.degrees(thr):.0f} deg): would damp {false_pos} of {len(upright)} "
              f"upright runs")
    leads = [r.fall_time_s - r.crossing_s(tilt) for r in fallen if r.crossing_s(tilt) is not None]
    if fallen:
        print(f"of {len(fallen)} falls, {len(leads)} passed the recommended tilt before the evaluation's fall criterion"
              + (f", {np.median(leads) * 1000:.0f} ms before it (median; least {min(leads) * 1000:.0f} ms)" if leads else "")
              + "; the others fell by the pelvis height criterion")
    print(f"recommended: fall_tilt_rad {tilt:.2f} (worst upright or reference + {TILT_MARGIN_RAD:g} rad), fall_height_m "
          f"{height:.2f} (lowest upright or reference - {HEIGHT_MARGIN_M:g} m); current {FALL_TILT_RAD:.2f} / {FALL_HEIGHT_M:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": [asdict(r) for r in rows], "recommended_tilt_rad": tilt, "recommended_height_m": height,
                       "current_tilt_rad": FALL_TILT_RAD, "current_height_m": FALL_HEIGHT_M,
                       "command": ["python", "-m", "sim2sim.fall_report", *(argv if argv is not None else sys.argv[1:])]},
                      f, indent=1, default=float)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table_markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
