"""`gmt-ros`: the command line of gmt_ros.

    gmt-ros eval --motion PATH_OR_NAME [--policy NAME_OR_CONTRACT] [--seconds S] [--seed N] --json OUT
    gmt-ros eval-all [--policy ...] [--json OUT] [--markdown OUT]   every shipped clip, one table
    gmt-ros convert IN OUT                                          clip file -> project .npz
    gmt-ros clips                                                   list the clip library

Bad input exits non-zero with one line naming the problem; a run that completes exits 0 whatever
the robot did (the result is in the report).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gmt_ros.core.contract import DEFAULT_POLICY
from gmt_ros.tools import UsageError, add_send_path_argument

# Subcommand modules under gmt_ros/tools/, each with register(subparsers).
TOOL_MODULES: tuple[str, ...] = ("evaluate", "sim2sim_cli", "recording", "bench", "faults", "stream_producer",
                                 "operate", "launch_run", "distill")


def _write_json(path: str | None, data) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(data, indent=2) + "\n")


def _load_inputs(policy: str, motion: str):
    from gmt_ros.core.clip_library import resolve_clip
    from gmt_ros.core.contract import load_contract
    from gmt_ros.core.motion import load_clip
    from gmt_ros.core.policy import TrackingPolicy

    try:
        contract = load_contract(policy)
        tracker = TrackingPolicy(contract)  # opens and checks the ONNX file against the contract
        clip = load_clip(resolve_clip(motion))
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    return contract, tracker, clip


def cmd_eval(args) -> int:
    from sim2sim.evaluate import run_episode

    if args.seconds is not None and not args.seconds > 0:
        raise UsageError(f"--seconds must be positive, got {args.seconds}")
    from sim2sim.evaluate import SEND_PATHS

    contract, tracker, clip = _load_inputs(args.policy, args.motion)
    limits, fall_check = SEND_PATHS[args.send_path]
    result = run_episode(contract, clip, seconds=args.seconds, seed=args.seed, start=args.start, policy=tracker,
                         command_limits=limits, fall_check=fall_check)
    print(result.summary_line())
    _write_json(args.json, result.as_dict())
    return 0


def cmd_eval_all(args) -> int:
    from gmt_ros.core.clip_library import list_clips
    from gmt_ros.core.contract import load_contract
    from gmt_ros.core.motion import load_clip
    from sim2sim.evaluate import run_episode

    contract = load_contract(args.policy)
    rows = []
    for name, path in sorted(list_clips().items()):
        result = run_episode(contract, load_clip(path), seed=args.seed, start=args.start)
        print(result.summary_line(), flush=True)
        rows.append(result.as_dict() | {"clip": name})
    _write_json(args.json, rows)
    if args.markdown:
        Path(args.markdown).write_text(eval_table_markdown(rows))
    fell = sum(r["fell"] for r in rows)
    print(f"{len(rows)} clips, {fell} fell")
    return 0


def eval_table_markdown(rows) -> str:
    head = "| clip | s | fell | E_mpjpe rad | E_mpkpe mm | E_vel m/s | E_yaw_vel rad/s | min pelvis m |\n"
    head += "|---|---|---|---|---|---|---|---|\n"
    lines = [
        f"| {r['clip']} | {r['duration_s']:.1f} | {'yes' if r['fell'] else 'no'} | {r['e_mpjpe_rad']:.3f} |"
        f" {r['e_mpkpe_mm']:.1f} | {r['e_vel_mps']:.3f} | {r['e_yaw_vel_radps']:.3f} | {r['min_pelvis_height_m']:.2f} |"
        for r in rows
    ]
    return head + "\n".join(lines) + "\n"


def cmd_convert(args) -> int:
    from gmt_ros.core.motion import convert_main

    return convert_main([args.input, args.output])


def cmd_clips(args) -> int:
    from gmt_ros.core.clip_library import list_clips

    for name, path in sorted(list_clips().items()):
        print(f"{name}\t{path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gmt-ros", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("eval", help="track one clip in MuJoCo (in-process, headless) and report")
    p.add_argument("--motion", required=True, help="clip path (.npz/.pkl) or library name, e.g. walk_stand")
    p.add_argument("--policy", default=DEFAULT_POLICY, help="policy name under models/ or a contract.yaml path")
    p.add_argument("--seconds", type=float, default=None, help="duration (default: the whole clip)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--start", choices=("clip", "default"), default="clip", help="initial robot pose")
    add_send_path_argument(p)
    p.add_argument("--json", help="write the report here")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("eval-all", help="eval every clip of the library; prints the README table")
    p.add_argument("--policy", default=DEFAULT_POLICY)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--start", choices=("clip", "default"), default="clip")
    p.add_argument("--json")
    p.add_argument("--markdown", help="write a markdown table here")
    p.set_defaults(func=cmd_eval_all)

    p = sub.add_parser("convert", help="convert a clip (.pkl/.npz) into the project's .npz format")
    p.add_argument("input")
    p.add_argument("output")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("clips", help="list the clip library")
    p.set_defaults(func=cmd_clips)

    import importlib

    for module in TOOL_MODULES:
        importlib.import_module(f"gmt_ros.tools.{module}").register(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"gmt-ros {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
