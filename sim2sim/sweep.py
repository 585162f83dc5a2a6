"""The clip x start x DR preset x seed sweep shared by the calibration reports
(``sim2sim.limits_report``, ``sim2sim.fall_report``): their common command-line options and plan."""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable


def add_sweep_arguments(ap: argparse.ArgumentParser) -> None:
    from gmt_ros.core.contract import DEFAULT_POLICY

    ap.add_argument("--policy", default=DEFAULT_POLICY)
    ap.add_argument("--clips", nargs="*", default=None, help="library clip names (default: every shipped clip)")
    ap.add_argument("--starts", nargs="+", default=["clip", "default"], choices=("clip", "default"))
    ap.add_argument("--dr", nargs="+", default=["none", "gmt", "hard"],
                    help="DR presets; 'none' runs seed 0 only (deterministic), others every --seeds")
    ap.add_argument("--dr-starts", nargs="+", default=["clip", "default"], choices=("clip", "default"),
                    help="starts under DR presets other than none (default: both)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--seconds", type=float, default=None, help="cap each episode (default: the whole clip)")
    ap.add_argument("--json", help="write rows and the calibration here")
    ap.add_argument("--markdown", help="write the table here")


def sweep_inputs(args):
    """(contract, policy, {clip name: clip}, plan of (clip name, start, DR preset, seed))."""
    from gmt_ros.core.clip_library import list_clips, load_named_clip
    from gmt_ros.core.contract import load_contract
    from gmt_ros.core.policy import TrackingPolicy

    contract = load_contract(args.policy)
    names = args.clips or sorted(list_clips())
    clips = {n: load_named_clip(n) for n in names}
    plan = [(name, start, dr, seed) for dr in args.dr for name in names
            for start in (args.starts if dr == "none" else args.dr_starts)
            for seed in ([0] if dr == "none" else args.seeds)]
    return contract, TrackingPolicy(contract), clips, plan


def run_sweep(plan, measure_one: Callable, describe: Callable) -> list:
    """``measure_one(name, start, dr, seed)`` for each plan entry, in order (its row's ``clip``
    set to the library name), with a progress line ``describe(row)`` on stderr; the rows."""
    rows = []
    started = time.perf_counter()
    for i, (name, start, dr, seed) in enumerate(plan, 1):
        row = measure_one(name, start, dr, seed)
        row.clip = name
        rows.append(row)
        print(f"[{i}/{len(plan)} {time.perf_counter() - started:.0f} s] {name} {start} DR {dr} seed {seed}: "
              f"{describe(row)}", file=sys.stderr, flush=True)
    return rows
