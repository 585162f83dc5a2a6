"""`gmt-ros evaluate` (clips × seeds under one DR preset, in parallel, with a summary table) and
`gmt-ros render` (one episode as an MP4 with the reference as a ghost).

    gmt-ros evaluate [--motions DIR_OR_NAME ...] [--seeds N] [--dr PRESET] [--policy NAME]
                     [--jobs 2] [--seconds S] [--plots | --plots-all] [--plot-joints J ...]
                     [--traces] --out DIR
    gmt-ros compare --policies REF OTHER ... [--dr none gmt] [--seeds N] [--motions ...] [--jobs 2]
                    [--write-into FILE ...] --out DIR
    gmt-ros render --motion NAME [--seconds S] [--dr PRESET --seed N] [--fps 30]
                   [--width 480 --height 360] [--ghost-offset 1.0] [--gl auto|egl|osmesa] --out run.mp4

See docs/EVALUATION.md for the metrics and the files written.
"""
from __future__ import annotations

import datetime
import json
import os
import sys
import time
from pathlib import Path

from gmt_ros.core.contract import DEFAULT_POLICY
from gmt_ros.tools import UsageError, add_send_path_argument


def _check_dr(dr: str | None) -> None:
    if dr is None:
        return
    from sim2sim.randomization import DomainRandomization

    try:
        DomainRandomization.load(dr)
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None


def _check_policy(policy: str):
    from gmt_ros.core.contract import load_contract
    from gmt_ros.core.policy import TrackingPolicy

    try:
        contract = load_contract(policy)
        tracker = TrackingPolicy(contract)  # opens and checks the ONNX file before any worker starts
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    return contract, tracker


def _check_positive(name: str, value, integer: bool = False) -> None:
    if value is None:
        return
    if not value > 0:
        raise UsageError(f"{name} must be {'at least 1' if integer else 'positive'}, got {value}")


def cmd_evaluate(args) -> int:
    from sim2sim import batch, plots

    if args.seeds < 1:
        raise UsageError(f"--seeds must be at least 1, got {args.seeds}")
    if args.seed_start < 0:
        raise UsageError(f"--seed-start must be >= 0, got {args.seed_start}")
    if args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    _check_positive("--seconds", args.seconds)
    _check_dr(args.dr)
    try:
        joints = plots.resolve_joint_names(args.plot_joints) if args.plot_joints else plots.DEFAULT_PLOT_JOINTS
        clips = batch.find_clips(args.motions or [])
        batch.check_clips(clips)
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    contract, _ = _check_policy(args.policy)

    plot_mode = "all" if args.plots_all else ("first" if args.plots else "none")
    seeds = range(args.seed_start, args.seed_start + args.seeds)
    specs = batch.plan_runs(clips, seeds, args.dr, seconds=args.seconds, start=args.start, plots=plot_mode,
                            save_traces=args.traces)
    settings = batch.BatchSettings(policy=args.policy, out_dir=str(args.out), plot_joints=tuple(joints),
                                   send_path=args.send_path)
    progress = None if args.quiet else batch.Progress(len(specs)).update
    print(f"evaluating {len(clips)} clip(s) x {args.seeds} seed(s) = {len(specs)} runs, policy {contract.name}, "
          f"DR {args.dr}, send path {args.send_path}, {min(args.jobs, len(specs))} worker(s) -> {args.out}",
          file=sys.stderr, flush=True)
    started = time.perf_counter()
    rows = batch.run_batch(specs, settings, jobs=args.jobs, progress=progress)
    wall = time.perf_counter() - started
    meta = _meta(args, contract.name, clips, list(seeds), wall)
    summary = batch.write_outputs(args.out, rows, meta)
    print(batch.summary_markdown(summary, meta))
    out = Path(args.out)
    print(f"wrote {out / 'runs.json'}, {out / 'runs.csv'}, {out / 'summary.json'}, {out / 'summary.md'}"
          + (f" and plots under {out / 'plots'}" if plot_mode != "none" else ""), file=sys.stderr)
    return 0


def _meta(args, policy_name: str, clips: dict, seeds: list[int], wall_s: float) -> dict:
    import mujoco
    import onnxruntime

    return {
        "policy": policy_name,
        "dr": args.dr,
        "clips": list(clips),
        "seeds": seeds,
        "seeds_count": len(seeds),
        "seconds": args.seconds,
        "start": args.start,
        "jobs": args.jobs,
        "wall_s": round(wall_s, 1),
        "finished_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": ["gmt-ros", *sys.argv[1:]] if Path(sys.argv[0]).name == "gmt-ros" else None,
        "versions": {"mujoco": mujoco.__version__, "onnxruntime": onnxruntime.__version__,
                     "python": sys.version.split()[0]},
        "cpu_count": os.cpu_count(),
        # bridge: the bridge's Supervisor at 500 Hz (stop band, speed and torque limits, fall check);
        # range: the same with the joint-range clip of earlier versions; raw: no supervisor
        "send_path": args.send_path,
        "command_limits": args.send_path,
        "gross_margin_rad": _gross_margin(),
    }


def _gross_margin() -> float:
    from gmt_ros.core.command_limits import CommandLimits

    return CommandLimits().gross_margin_rad


def cmd_compare(args) -> int:
    """Every policy on the same clips and seeds under each preset; one comparison table."""
    from sim2sim import batch, compare

    if args.seeds < 1:
        raise UsageError(f"--seeds must be at least 1, got {args.seeds}")
    if args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    if len(args.policies) < 2 or len(set(args.policies)) != len(args.policies):
        raise UsageError(f"--policies needs at least two different policies, got {args.policies}")
    for path in args.write_into:
        if not Path(path).is_file():
            raise UsageError(f"--write-into: {path} does not exist")
        text = Path(path).read_text()
        if compare.BEGIN_MARK not in text or compare.END_MARK not in text:
            raise UsageError(f"--write-into: {path} has no comparison section ({compare.BEGIN_MARK} ... {compare.END_MARK})")
    for dr in args.dr:
        _check_dr(dr)
    for policy in args.policies:
        _check_policy(policy)
    try:
        clips = batch.find_clips(args.motions or [])
        batch.check_clips(clips)
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    out = Path(args.out)
    joints = compare.common_joint_mask(args.policies)
    results: dict[str, dict[str, list[dict]]] = {}
    seeds_of: dict[str, list[int]] = {}
    started = time.perf_counter()
    for dr in args.dr:
        # without randomisation every seed gives the identical run: one is enough
        seeds = [0] if dr == "none" else list(range(args.seed_start, args.seed_start + args.seeds))
        seeds_of[dr] = seeds
        results[dr] = {}
        for policy in args.policies:
            run_dir = out / dr / policy.replace("/", "_")
            specs = batch.plan_runs(clips, seeds, dr, save_traces=True)
            settings = batch.BatchSettings(policy=policy, out_dir=str(run_dir), send_path=args.send_path)
            print(f"compare: {policy}, DR {dr}: {len(specs)} runs -> {run_dir}", file=sys.stderr, flush=True)
            progress = None if args.quiet else batch.Progress(len(specs)).update
            t0 = time.perf_counter()
            rows = batch.run_batch(specs, settings, jobs=args.jobs, progress=progress)
            compare.add_common_mpjpe(rows, run_dir, joints)
            meta = _meta(args, policy, clips, seeds, time.perf_counter() - t0) | {"dr": dr}
            batch.write_outputs(run_dir, rows, meta)
            results[dr][policy] = rows
    meta = {"clips": len(clips), "jobs": args.jobs, "wall_s": time.perf_counter() - started, "send_path": args.send_path,
            "command": " ".join(["gmt-ros", *sys.argv[1:]]) if Path(sys.argv[0]).name == "gmt-ros" else "gmt-ros compare",
            "commit": commit_text()}
    table = compare.comparison_markdown(results, seeds_of, compare.Criteria(), meta)
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.md").write_text(table)
    print(table)
    for path in args.write_into:
        compare.write_between_marks(Path(path), table)
        print(f"compare: wrote the table into {path}", file=sys.stderr)
    print(f"wrote {out / 'comparison.md'} and per-run outputs under {out}/<dr>/<policy>/", file=sys.stderr)
    return 0


def commit_text() -> str | None:
    """The commit measured, short, with "+changes" when tracked files differ from it."""
    from gmt_ros.tools.bench import git_info

    info = git_info()
    if not info.get("commit"):
        return None
    return info["commit"][:7] + (" + uncommitted changes" if info.get("dirty") else "")


def cmd_render(args) -> int:
    from gmt_ros.core.clip_library import load_named_clip
    from sim2sim import video

    if not str(args.out).lower().endswith(".mp4"):
        raise UsageError(f"--out must name a .mp4 file, got {args.out}")
    _check_positive("--seconds", args.seconds)
    if args.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {args.seed}")
    if not 1 <= args.fps <= 120:
        raise UsageError(f"--fps must be in [1, 120], got {args.fps}")
    for name, value in (("--width", args.width), ("--height", args.height)):
        if not 16 <= value <= 4096 or value % 2:
            raise UsageError(f"{name} must be an even number of pixels in [16, 4096], got {value}")
    _check_dr(args.dr)
    try:
        clip = load_named_clip(args.motion)
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    contract, tracker = _check_policy(args.policy)
    started = time.perf_counter()
    try:
        result, frames = video.render_episode(
            contract, clip, args.out, seconds=args.seconds, seed=args.seed, dr=args.dr, start=args.start,
            policy=tracker, fps=args.fps, width=args.width, height=args.height, ghost_offset_m=args.ghost_offset,
            backend=args.gl)
    except video.RenderError as exc:
        print(f"gmt-ros render: error: {exc}", file=sys.stderr)
        return 1
    print(result.summary_line())
    print(f"wrote {args.out}: {frames} frames at {args.fps:g} fps, {args.width}x{args.height}, "
          f"in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result.as_dict(), indent=2) + "\n")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="clips x seeds under one DR preset, in parallel; summary table")
    p.add_argument("--motions", nargs="*", default=[], metavar="DIR_OR_NAME",
                   help="clip directories, library groups (gmt, twist2), clip names or files "
                        "(default: every shipped clip)")
    p.add_argument("--seeds", type=int, default=10, help="seeds per clip (default 10): seed-start .. +N-1")
    p.add_argument("--seed-start", type=int, default=0)
    p.add_argument("--dr", default="none", help="randomization preset (none, gmt, hard) or a preset YAML file")
    p.add_argument("--policy", default=DEFAULT_POLICY, help="policy name under models/ or a contract.yaml path")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="worker processes (default 2)")
    p.add_argument("--seconds", type=float, default=None, help="cap each run at S seconds (default: whole clip)")
    p.add_argument("--start", choices=("clip", "default"), default="clip", help="initial robot pose")
    add_send_path_argument(p)
    p.add_argument("--plots", action="store_true", help="per-run PNGs for the first seed of each clip")
    p.add_argument("--plots-all", action="store_true", help="per-run PNGs for every run")
    p.add_argument("--plot-joints", nargs="+", metavar="JOINT",
                   help="joints for the tracking/torque plots (e.g. left_knee right_hip_pitch); "
                        "default: left hip pitch, left knee, left shoulder pitch, waist yaw")
    p.add_argument("--traces", action="store_true", help="save each run's per-tick trace (traces/*.npz)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=cmd_evaluate)

    p = subparsers.add_parser("compare", help="policies side by side on the same clips and seeds; one table")
    p.add_argument("--policies", nargs="+", required=True,
                   help="policies to compare (names under models/ or contract paths); the first is the reference")
    p.add_argument("--dr", nargs="+", default=["none", "gmt"],
                   help="randomization presets (default: none gmt); 'none' runs seed 0 only (deterministic)")
    p.add_argument("--motions", nargs="*", default=[], metavar="DIR_OR_NAME", help="clips (default: every shipped clip)")
    p.add_argument("--seeds", type=int, default=10, help="seeds per clip under randomisation (default 10)")
    p.add_argument("--seed-start", type=int, default=0)
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="worker processes (default 2)")
    p.add_argument("--write-into", nargs="*", default=[], metavar="FILE",
                   help="also replace the comparison section of these markdown files (README, model card)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_send_path_argument(p)
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=cmd_compare, seconds=None, start="clip")

    p = subparsers.add_parser("render", help="one episode as an MP4: the robot beside a ghost of the reference")
    p.add_argument("--motion", required=True, help="clip path or library name")
    p.add_argument("--policy", default=DEFAULT_POLICY)
    p.add_argument("--seconds", type=float, default=None, help="duration (default: the whole clip)")
    p.add_argument("--dr", default=None, help="randomization preset or YAML (default: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--start", choices=("clip", "default"), default="clip")
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--width", type=int, default=480)
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--ghost-offset", type=float, default=1.0,
                   help="metres the reference ghost stands to the left of the clip's start heading (0: overlaid)")
    p.add_argument("--gl", choices=("auto", "egl", "osmesa"), default="auto", help="offscreen OpenGL backend")
    p.add_argument("--json", help="also write the episode report here")
    p.add_argument("--out", required=True, help="output .mp4 file")
    p.set_defaults(func=cmd_render)
