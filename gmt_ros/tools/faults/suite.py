"""The fault suite: every planned run in turn (with retries), the report, and ``gmt-ros faults``."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from gmt_ros.core.contract import DEFAULT_POLICY
from gmt_ros.tools import UsageError
from gmt_ros.tools import sim2sim_run as s2s
from gmt_ros.tools.faults.catalog import BY_NAME, plan_runs
from gmt_ros.tools.faults.model import DETECTION_S, FaultRunError, ms, node_settings
from gmt_ros.tools.faults.run import TRACK_S, FaultRun
from gmt_ros.tools.faults.verdict import evaluate

DEFAULT_MOTION = "twist2/walk_001"  # the shipped TWIST2 policy tracks its own data most reliably in the graph


@dataclass
class SuiteOptions:
    json_path: str
    short: bool = False
    only: tuple[str, ...] = ()
    motion: str = DEFAULT_MOTION
    policy: str = DEFAULT_POLICY
    domain: int = 73
    ros_domain: int | None = None
    keep_logs: str | None = None
    retries: int = 1
    realtime: bool = False  # sim2sim's --realtime scheduling (SCHED_FIFO sim, bridge writer; nice nodes)


def run_suite(opt: SuiteOptions, echo=print) -> dict:
    """Every planned run in turn; the report (also written to ``opt.json_path`` after each run, with
    ``complete`` false until the end, so an interrupted suite leaves what it measured)."""
    settings = node_settings()
    runs = plan_runs("short" if opt.short else "full", opt.only)
    base = Path(opt.keep_logs) if opt.keep_logs else Path(tempfile.mkdtemp(prefix="gmt_faults_"))
    base.mkdir(parents=True, exist_ok=True)
    started = time.time()
    results: list[dict] = []
    failures: list[dict] = []  # runs that could not test their fault, with the machine's load at the time

    def report(complete: bool) -> dict:
        ordered = sorted(results, key=lambda r: r["number"])
        out = {
            "suite": "short" if opt.short else "full", "complete": complete, "motion": opt.motion, "policy": opt.policy,
            "realtime": opt.realtime, "settings": settings, "detection_bound_ms": ms(DETECTION_S),
            "track_s": TRACK_S["short" if opt.short else "full"], "faults": ordered,
            "handled": sum(r["handled"] for r in ordered), "total": len(ordered), "failed_runs": failures,
            "out_of_limit_commands_total": sum(r.get("out_of_limit_commands") or 0 for r in ordered),
            "wall_time_s": round(time.time() - started, 1), "cpus": os.cpu_count(), "logs": str(base),
        }
        out["summary"] = summary_line(out)
        if opt.json_path:
            Path(opt.json_path).parent.mkdir(parents=True, exist_ok=True)
            Path(opt.json_path).write_text(json.dumps(out, indent=2) + "\n")
        return out

    for names in runs:
        results += _run_with_retries(names, opt, base, settings, failures, echo)
        report(complete=False)
    final = report(complete=True)
    if not opt.keep_logs and final["handled"] == final["total"]:
        shutil.rmtree(base, ignore_errors=True)
        final["logs"] = None
        for r in final["faults"]:
            r["logs"] = None
        if opt.json_path:
            Path(opt.json_path).write_text(json.dumps(final, indent=2) + "\n")
    return final


def _run_with_retries(names, opt: SuiteOptions, base: Path, settings: dict, failures: list, echo) -> list[dict]:
    """One run (a fresh graph per attempt) until every fault of ``names`` has a verdict; a fault whose
    run could not test it is tried again in the next attempt (alone, or with its partners still
    pending), and gets a "run failed" entry after the last one."""
    pending = list(names)
    verdicts: list[dict] = []
    errors: dict[str, str] = {}
    for attempt in range(1, opt.retries + 2):
        label = "+".join(pending)
        log_dir = base / f"{label}{'' if attempt == 1 else f'_attempt{attempt}'}"
        run = FaultRun(tuple(pending), opt, log_dir, settings)
        t0 = time.time()
        raw = None
        problems: dict[str, str] = {}
        try:
            raw = run.execute()
            raw["t0"] = t0
        except (FaultRunError, s2s.Sim2SimError) as exc:
            problems = dict.fromkeys(pending, str(exc).splitlines()[0])
        else:
            for inj in run.injections:
                try:
                    v = evaluate(inj, raw, settings)
                except FaultRunError as exc:
                    problems[inj.fault.name] = str(exc).splitlines()[0]
                    continue
                v.update(attempts=attempt, run_wall_s=round(time.time() - t0, 1), logs=str(log_dir),
                         node_pids=raw["pids"], load_average=raw["load_average"], other_graphs=raw["other_graphs"])
                echo("  " + fault_line(v))
                verdicts.append(v)
            problems.update(run.aborted)
            done = {v["name"] for v in verdicts}
            for n in pending:
                if n not in done and n not in problems:
                    problems[n] = "the run ended before injecting it"
        if problems:
            others = s2s.other_node_processes()
            load = round(os.getloadavg()[0], 2)
            for n, why in problems.items():
                echo(f"  {n}: run failed (attempt {attempt}): {why} [load {load}, {len(others)} other node processes]")
                failures.append({"fault": n, "run": label, "attempt": attempt, "error": why, "load_average": load,
                                 "other_node_processes": others,
                                 "supervisor_clip": ((raw or {}).get("supervisor_latest") or {}).get("clip"),
                                 "sim_real_time_factor": ((raw or {}).get("sim") or {}).get("real_time_factor")})
            errors.update(problems)
        pending = [n for n in pending if n in problems]
        if not pending:
            break
    for n in pending:
        f = BY_NAME[n]
        verdicts.append({"number": f.number, "name": n, "title": f.title, "group": f.group, "expected": f.expected,
                         "handled": False, "observed": "run failed", "error": errors[n], "attempts": opt.retries + 1,
                         "logs": str(base)})
    return verdicts


def fault_line(r: dict) -> str:
    if r.get("error"):
        return f"{r['number']:2d} {r['name']}: NOT RUN ({r['error'].splitlines()[0]})"
    timing = ""
    if r.get("damping_at_robot_ms") is not None:
        timing = f", damping at the robot {r['damping_at_robot_ms']} ms (bound {r['bound_ms']} ms)"
    verdict = "handled" if r["handled"] else "NOT HANDLED"
    failed = [k for k, v in r.get("checks", {}).items() if not v]
    return (f"{r['number']:2d} {r['name']}: {verdict}: {r['observed']}{timing}; out-of-limit commands "
            f"{r.get('out_of_limit_commands')}; cause: {r.get('supervisor_fault') or r.get('startup_error') or r.get('cause_log_line')}"
            + (f"; failed checks: {', '.join(failed)}" if failed else "")
            + (f" [{'; '.join(r['notes'])}]" if r.get("notes") else ""))


def summary_line(report: dict) -> str:
    parts = []
    for r in report["faults"]:
        if r.get("damping_at_robot_ms") is not None:
            parts.append(f"{r['name']} {r['damping_at_robot_ms']:g}/{r['bound_ms']:g} ms")
        else:
            parts.append(f"{r['name']} {r.get('observed')}")
    return (f"{report['handled']}/{report['total']} faults handled: {', '.join(parts)}; "
            f"{report['out_of_limit_commands_total']} out-of-limit commands reached the robot; "
            f"{report['wall_time_s']:.0f} s")


# ------------------------------------------------------------------------------------------------
# CLI


def cmd_faults(args) -> int:
    from gmt_ros.adapters import dds

    if not 1 <= args.domain <= dds.MAX_DOMAIN_ID:
        raise UsageError(f"--domain must be a non-zero DDS domain (1..{dds.MAX_DOMAIN_ID}), got {args.domain}")
    if args.retries < 0:
        raise UsageError(f"--retries must be >= 0, got {args.retries}")
    s2s._raise_on_sigterm()
    opt = SuiteOptions(json_path=args.json, short=args.short, only=tuple(args.only or ()), motion=args.motion,
                       policy=args.policy, domain=args.domain, ros_domain=args.ros_domain, keep_logs=args.keep_logs,
                       retries=args.retries, realtime=args.realtime)
    plan_runs("short" if opt.short else "full", opt.only)  # UsageError for unknown names, before anything starts
    s2s.check_options(s2s.Sim2SimOptions(motion=opt.motion, policy=opt.policy, domain=opt.domain))
    report = run_suite(opt, echo=lambda line: print(line, flush=True))  # writes --json after every run
    print(report["summary"], flush=True)
    return 0 if report["handled"] == report["total"] else 1


def register(subparsers) -> None:
    p = subparsers.add_parser("faults", help="fault-injection suite on the sim2sim node graph (docs/FAULTS.md)")
    p.add_argument("--json", required=True, help="write the per-fault report here")
    p.add_argument("--short", action="store_true", help="CI variant: 1 s of tracking before each fault, one run per fault class")
    p.add_argument("--only", nargs="+", metavar="NAME", help=f"run only these faults: {', '.join(BY_NAME)}")
    p.add_argument("--motion", default=DEFAULT_MOTION, help="clip tracked when the fault hits (library name)")
    p.add_argument("--policy", default=DEFAULT_POLICY)
    p.add_argument("--domain", type=int, default=73, help="the robot's DDS domain (non-zero, loopback)")
    p.add_argument("--ros-domain", type=int, default=None, help="ROS_DOMAIN_ID of the graphs (default: $ROS_DOMAIN_ID or picked)")
    p.add_argument("--keep-logs", help="keep every run's logs, sim report and trace under DIR/<run>/")
    p.add_argument("--realtime", action="store_true",
                   help="the graph with sim2sim's real-time scheduling (needs root or CAP_SYS_NICE), as on the robot")
    p.add_argument("--retries", type=int, default=1,
                   help="run again (fresh graph) when a run could not test its fault: a node died, another fault "
                        "came first (default 1)")
    p.set_defaults(func=cmd_faults)

