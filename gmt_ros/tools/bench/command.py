"""`gmt-ros bench`: the command line, and the run of the sections into one report."""
from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

from gmt_ros.tools.bench.environment import busy_load, git_info, machine_info
from gmt_ros.tools.bench.graph_run import SETTLE_AFTER_LOAD_S, measure_graph
from gmt_ros.tools.bench.policy_step import measure_policy_step
from gmt_ros.tools.bench.report import print_summary, targets
from gmt_ros.tools.bench.rtf import measure_rtf

SECTIONS = ("policy", "graph", "rtf")


def run_bench(args) -> dict:
    from gmt_ros.tools import UsageError

    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown or not sections:
        raise UsageError(f"--sections: unknown {unknown or 'empty'}; choose from {', '.join(SECTIONS)}")
    for name in ("steps",):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} must be >= 1, got {getattr(args, name)}")
    for name in ("graph_seconds", "rtf_seconds"):
        value = getattr(args, name)
        if not (math.isfinite(value) and value > 0):
            raise UsageError(f"--{name.replace('_', '-')} must be positive, got {value}")
    node_settings: dict[str, dict[str, str]] = {}
    for item in args.node_param:
        key, dot, rest = item.partition(".")
        name, eq, value = rest.partition("=")
        if not dot or not eq or not key.strip() or not name.strip():
            raise UsageError(f"--node-param must be NODE.NAME=VALUE (e.g. bridge.state_publish_rate_hz=500), "
                             f"got {item!r}")
        node_settings.setdefault(key.strip(), {})[name.strip()] = value.strip()
    started = time.time()
    report: dict = {
        "schema": 1, "started_unix": round(started, 3), "git": git_info(), "machine": machine_info(),
        "settings": {"sections": sections, "steps": args.steps, "graph_seconds": args.graph_seconds,
                     "rtf_seconds": args.rtf_seconds, "rtf_motion": args.rtf_motion, "dr": args.dr,
                     "load": not args.no_load, "load_pinned": not args.no_load_pin},
    }
    phases = ("idle", "loaded") if not args.no_load else ("idle",)

    def phased(fn):
        out = {}
        for phase in phases:
            with (busy_load(not args.no_load_pin) if phase == "loaded" else contextlib.nullcontext(None)) as busy:
                if busy is not None:
                    time.sleep(SETTLE_AFTER_LOAD_S)
                out[phase] = fn() | {"load_average_1min": round(os.getloadavg()[0], 2)}
        return out

    if "policy" in sections:
        print(f"policy step: {args.steps} steps per phase ({', '.join(phases)})", flush=True)
        report["policy"] = phased(lambda: measure_policy_step(args.steps))
    if "rtf" in sections:
        print(f"sim2sim real-time factor: {args.rtf_seconds} s of {args.rtf_motion}, DR {args.dr}", flush=True)
        report["rtf"] = phased(lambda: measure_rtf(args.rtf_seconds, args.rtf_motion, args.dr))
    if "graph" in sections:
        print(f"node graph: start-up, then {args.graph_seconds} s per phase ({', '.join(phases)})", flush=True)
        work = Path(args.keep_logs) if args.keep_logs else Path(tempfile.mkdtemp(prefix="gmt_bench_"))
        try:
            report["graph"] = measure_graph(args.graph_seconds, not args.no_load, not args.no_load_pin, work,
                                            node_settings=node_settings, launch_settings=args.launch_settings,
                                            nice=args.nice)
        except (RuntimeError, OSError) as exc:  # the graph did not run (node died, supervisor fault, ...)
            report["graph"] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"node graph: not measured: {report['graph']['error']}", file=sys.stderr)
        finally:
            if not args.keep_logs:
                import shutil

                shutil.rmtree(work, ignore_errors=True)
    report["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    report["duration_s"] = round(time.time() - started, 1)
    report["targets"] = targets(report)
    return report


def cmd_bench(args) -> int:
    report = run_bench(args)
    print_summary(report)
    g = report["git"]
    print(f"commit {g.get('commit')}{' (dirty)' if g.get('dirty') else ''}; {report['machine']['nproc']} CPUs, "
          f"load average at start {report['machine']['load_average_start']}; {report['duration_s']} s")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="performance: policy step/tick, latencies through the nodes, RSS, "
                                            "sim2sim real-time factor")
    p.add_argument("--json", help="write the report here")
    p.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    p.add_argument("--steps", type=int, default=3000, help="policy steps per phase (default 3000)")
    p.add_argument("--graph-seconds", type=float, default=30.0, help="graph measurement per phase (default 30 s)")
    p.add_argument("--rtf-seconds", type=float, default=20.0, help="simulated seconds per phase (default 20)")
    p.add_argument("--rtf-motion", default="gmt/walk_stand", help="clip of the real-time-factor run")
    p.add_argument("--dr", default="hard", help="randomisation preset of the real-time-factor run (default hard)")
    p.add_argument("--no-load", action="store_true", help="idle phase only")
    p.add_argument("--no-load-pin", action="store_true", help="do not pin the busy loop to the last CPU")
    p.add_argument("--launch-settings", action="store_true",
                   help="graph: exactly the launch file's node settings (default: gmt-ros sim2sim's lighter ones)")
    p.add_argument("--node-param", action="append", default=[], metavar="NODE.NAME=VALUE",
                   help="graph: a node setting on top (experiments), e.g. bridge.state_publish_rate_hz=500")
    p.add_argument("--nice", type=int, default=0, help="graph: the nodes' nice value (negative needs root)")
    p.add_argument("--keep-logs", metavar="DIR", help="keep the graph's logs and records here")
    p.set_defaults(func=cmd_bench)
