#!/usr/bin/env python3
"""Fall rates of a tracking policy under domain randomisation (clips × seeds × presets).

    .venv/bin/python scripts/dr_probe.py [--presets none gmt hard] [--clips gmt/squat ...]
        [--seeds 3] [--max-seconds 10] [--policy twist2_student] [--friction 0.1 0.3]
        [--single-factor gmt] [--leave-one-out gmt] [--json out.json]

Each episode runs sim2sim.evaluate.run_episode with ``G1Sim.randomized(preset, seed)`` and prints
whether the robot fell, when, and the drawn values that matter most for balance. ``--friction``
adds friction-only presets (every other parameter undisturbed) to isolate the sole friction;
``--single-factor PRESET`` adds one preset per parameter of PRESET (pushes as one), each alone;
``--leave-one-out PRESET`` adds PRESET without each of its parameters in turn.
"""
from __future__ import annotations

import argparse
import json
import time
import warnings

from gmt_ros.core.clip_library import load_named_clip
from gmt_ros.core.contract import DEFAULT_POLICY, load_contract
from sim2sim.evaluate import run_episode
from sim2sim.randomization import DomainRandomization
from sim2sim.simulator import G1Sim

DEFAULT_CLIPS = ("gmt/squat", "gmt/dance_waltz", "gmt/walk_stand", "gmt/airkick_stand", "twist2/walk_002")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="*", default=["none", "gmt", "hard"])
    parser.add_argument("--clips", nargs="*", default=list(DEFAULT_CLIPS))
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 .. N-1 per clip and preset")
    parser.add_argument("--max-seconds", type=float, default=10.0, help="cap on each episode's length")
    parser.add_argument("--policy", default=DEFAULT_POLICY)
    parser.add_argument("--friction", nargs="*", type=float, default=[], help="friction-only presets")
    parser.add_argument("--single-factor", metavar="PRESET", help="each parameter of PRESET alone")
    parser.add_argument("--leave-one-out", metavar="PRESET", help="PRESET without each parameter in turn")
    parser.add_argument("--json", help="write every episode (with its drawn values) here")
    args = parser.parse_args()

    warnings.simplefilter("ignore")  # clip repair notices are not what this probe is about
    contract = load_contract(args.policy)
    clips = [load_named_clip(name) for name in args.clips]
    variants = [(name, DomainRandomization.load(name)) for name in args.presets]
    variants += [(f"friction={f:g}", DomainRandomization({"friction": f}, name=f"friction={f:g}"))
                 for f in args.friction]
    if args.single_factor:
        ranges = DomainRandomization.load(args.single_factor).ranges
        for key, value in ranges.items():
            if key == "push_interval_s":
                continue
            alone = {key: value}
            if key == "push_velocity_mps":
                alone["push_interval_s"] = ranges["push_interval_s"]
            variants.append((key, DomainRandomization(alone, name=f"{args.single_factor}:{key}")))
    if args.leave_one_out:
        ranges = DomainRandomization.load(args.leave_one_out).ranges
        for key in ranges:
            if key == "push_interval_s":
                continue
            dropped = {key, "push_interval_s"} if key == "push_velocity_mps" else {key}
            rest = {k: v for k, v in ranges.items() if k not in dropped}
            # Per-parameter random streams: the others draw the same values as in the full preset.
            variants.append((f"-{key}", DomainRandomization(rest, name=f"{args.leave_one_out}-{key}")))

    records = []
    for label, randomization in variants:
        falls = total = 0
        started = time.perf_counter()
        for clip in clips:
            seconds = min(clip.duration, args.max_seconds)
            for seed in range(args.seeds):
                drawn = randomization.draw(seed)
                sim = G1Sim(seed=seed, randomization=drawn)
                result = run_episode(contract, clip, seconds=seconds, seed=seed, sim=sim)
                falls += result.fell
                total += 1
                pushes = [t for t in drawn.push_times_s if t < seconds]
                print(f"{label:14s} {clip.name:22s} seed {seed}: "
                      f"{f'FELL at {result.fall_time_s:5.2f} s' if result.fell else 'upright        '}"
                      f" | E_mpjpe {result.errors['e_mpjpe_rad']:.3f} | friction "
                      f"{drawn.friction if drawn.friction is not None else 0.6:.2f} | delay "
                      f"{1000 * (drawn.action_delay_s + drawn.command_delay_s):4.1f} ms | mass "
                      f"{drawn.base_mass_kg:+.1f} kg | terrain {1000 * drawn.terrain_height_m:4.1f} mm"
                      f" | pushes at {[round(t, 1) for t in pushes]}", flush=True)
                records.append({"variant": label, **result.as_dict(), "randomization": drawn.as_dict()})
        print(f"== {label}: {falls}/{total} episodes fell ({time.perf_counter() - started:.0f} s)\n", flush=True)

    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(records, fh, indent=1)


if __name__ == "__main__":
    main()
