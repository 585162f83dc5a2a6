"""The command lines of the node-graph runner (``gmt_ros.tools.sim2sim_run``): `gmt-ros sim2sim`
(one clip through the graph, or with ``--source planner`` a /cmd_vel script; ``--external-sim``
against a simulator started by hand) and `gmt-ros sim2sim-all` (every shipped clip, one table).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from gmt_ros import graph
from gmt_ros.core.contract import DEFAULT_POLICY
from gmt_ros.tools import UsageError
from gmt_ros.tools.process_graph import Sim2SimError
from gmt_ros.tools.sim2sim_options import (
    DEFAULT_DOMAIN,
    DEFAULT_INTERFACE,
    DEFAULT_RAMP_S,
    Sim2SimOptions,
    pick_ros_domain,
)
from gmt_ros.tools.sim2sim_report import summary_line
from gmt_ros.tools.sim2sim_run import REALTIME, _raise_on_sigterm, run_sim2sim
from gmt_ros.tools.stream_run import StreamLink


def _options(args, motion: str | None, log_dir) -> Sim2SimOptions:
    source = getattr(args, "source", graph.DEFAULT_SOURCE)
    stream = None
    if source == "stream":
        stream = StreamLink(rate=args.stream_rate, jitter_ms=args.stream_jitter_ms, drop=args.stream_drop,
                            seed=args.stream_seed, transport=args.stream_transport, velocities=args.stream_velocities)
    return Sim2SimOptions(motion=motion, policy=args.policy, seconds=getattr(args, "seconds", None),
                          domain=args.domain, interface=args.interface, ros_domain=args.ros_domain,
                          log_dir=log_dir, ramp_time_s=args.ramp_time_s, launch_settings=args.launch_settings,
                          realtime=args.realtime, source=source, stream=stream, script=getattr(args, "script", None))


def _write(path, text: str) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)


def cmd_sim2sim_external(args) -> int:
    """--external-sim: bridge, policy and player against a simulator started by hand on loopback in
    --domain; engaged and driven by gmt-ros operate bringup (its gantry or band released once in
    policy, if it has one on rt/gmt/sim/gantry)."""
    from gmt_ros.tools.unitree_mujoco_check import run_graph_against

    if not 1 <= args.domain <= 232:
        raise UsageError(f"--domain must be a non-zero DDS domain, got {args.domain}")
    log_dir = Path(args.keep_logs or tempfile.mkdtemp(prefix="gmt_sim2sim_external_"))
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", PYTHONUNBUFFERED="1",
               ROS_DOMAIN_ID=str(args.ros_domain if args.ros_domain is not None else pick_ros_domain()))
    r = run_graph_against(log_dir, args.domain, args.motion, args.profile, env=env)
    op = r.get("operator") or {}
    bridge = op.get("bridge") or {}
    r.update({"clip": args.motion, "external_sim": True, "profile": args.profile, "logs": str(log_dir),
              "scoring": "supervisor and player (played to the end, faults, rates, clip counts); tracking errors need "
                         "the simulator's ground truth, which only gmt-ros-sim records (gmt-ros sim2sim without "
                         "--external-sim)"})
    print(f"sim2sim {args.motion} (external simulator, profile {args.profile}): "
          + ("played to its end, no fault" if op.get("played_to_end") else
             f"NOT played to its end: {op.get('fault') or (r['operator_output'] or ['?'])[-1]}")
          + f" | lowstate {bridge.get('lowstate_rate_hz')} Hz, /joint_states {bridge.get('joint_states_rate_hz')} Hz,"
            f" lowcmd {bridge.get('lowcmd_rate_hz')} Hz | clipped {op.get('supervisor_clips')} | logs {log_dir}",
          flush=True)
    _write(args.report, json.dumps(r, indent=2) + "\n")
    return 0 if r["operator_exit"] == 0 else 1


def cmd_sim2sim(args) -> int:
    from gmt_ros.tools import stream_run

    _raise_on_sigterm()
    if args.external_sim:
        return cmd_sim2sim_external(args)
    if args.compare_player and args.source == "player":
        raise UsageError("--compare-player compares another --source with the player")
    options = _options(args, args.motion, args.keep_logs)
    try:
        report = run_sim2sim(options)
        print(summary_line(report), flush=True)
        if args.source == "stream":
            print(stream_run.stream_summary_line(report), flush=True)
        if args.source == "planner":
            from gmt_ros.tools.planner_run import print_velocity_table

            table = print_velocity_table(report)
            if table is not None:
                _write(args.markdown, table + "\n")
        if args.compare_player:
            baseline = _options(args, args.motion, Path(args.keep_logs) / "player" if args.keep_logs else None)
            baseline.source, baseline.stream = graph.DEFAULT_SOURCE, None
            player = run_sim2sim(baseline)
            print(summary_line(player), flush=True)
            cmp = stream_run.comparison(report, player)
            print(stream_run.comparison_markdown(report, player, cmp), end="", flush=True)
            report = {args.source: report, "player": player, "comparison": cmp}
    except Sim2SimError as exc:
        print(f"gmt-ros sim2sim: error: {exc}", file=sys.stderr)
        return 1
    _write(args.report, json.dumps(report, indent=2) + "\n")
    return 0


def sim2sim_table_markdown(rows) -> str:
    """The `gmt-ros eval-all` columns plus the graph's rates, the sim's real-time factor and any
    supervisor fault."""
    head = ("| clip | s | to the end | fell | E_mpjpe rad | E_mpkpe mm | E_vel m/s | E_yaw_vel rad/s | min pelvis m "
            "| lowcmd Hz | policy Hz | latency p50 / p99 ms | sim × real time | fault |\n")
    head += "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"

    def f(x, spec):
        return "–" if x is None else format(x, spec)

    lines = []
    for r in rows:
        if r.get("error"):
            lines.append(f"| {r['clip']} | – | did not run: {r['error'].splitlines()[0]} |" + " |" * 11)
            continue
        lat = r.get("latency_ms") or {}
        fell = "–" if r.get("fell") is None else ("yes" if r["fell"] else "no")
        to_end = "yes" if r.get("completed") else "no"
        fault = (r["supervisor"].get("fault") or "").replace("|", "/")
        lines.append(
            f"| {r['clip']} | {r['duration_s']:.1f} | {to_end} | {fell} | {f(r.get('e_mpjpe_rad'), '.3f')} |"
            f" {f(r.get('e_mpkpe_mm'), '.1f')} | {f(r.get('e_vel_mps'), '.3f')} | {f(r.get('e_yaw_vel_radps'), '.3f')} |"
            f" {f(r.get('min_pelvis_height_m'), '.2f')} | {f(r.get('lowcmd_hz'), '.1f')} | {f(r.get('policy_hz'), '.1f')} |"
            f" {f(lat.get('p50'), '.2f')} / {f(lat.get('p99'), '.2f')} | {f(r['sim'].get('real_time_factor'), '.2f')} |"
            f" {fault[:60]} |")
    return head + "\n".join(lines) + "\n"


def cmd_sim2sim_all(args) -> int:
    from gmt_ros.core.clip_library import list_clips

    _raise_on_sigterm()
    rows = []
    started = time.time()
    for name in list_clips():
        log_dir = Path(args.keep_logs) / name.replace("/", "_") if args.keep_logs else None
        try:
            report = run_sim2sim(_options(args, name, log_dir))
        except Sim2SimError as exc:
            print(f"sim2sim {name}: did not run: {exc}", file=sys.stderr, flush=True)
            rows.append({"clip": name, "error": str(exc)})
            continue
        print(summary_line(report), flush=True)
        rows.append(report)
    table = sim2sim_table_markdown(rows)
    print(table, end="")
    _write(args.json, json.dumps(rows, indent=2) + "\n")
    _write(args.markdown, table)
    ran = [r for r in rows if not r.get("error")]
    fell = sum(bool(r.get("fell")) for r in ran)
    completed = sum(bool(r.get("completed")) for r in ran)
    stopped = sum(bool(r.get("ended_early_by")) and not r.get("fell") for r in ran)
    print(f"{len(rows)} clips, {len(ran)} ran, {completed} to the end upright, {fell} fell, {stopped} stopped by the "
          f"supervisor, {time.time() - started:.0f} s wall")
    return 0 if len(ran) == len(rows) else 1


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--policy", default=DEFAULT_POLICY, help="policy name under models/ or a contract.yaml path")
    p.add_argument("--domain", type=int, default=int(os.environ.get("GMT_ROS_DDS_DOMAIN") or DEFAULT_DOMAIN),
                   help=f"the robot's DDS domain, non-zero (default $GMT_ROS_DDS_DOMAIN, else {DEFAULT_DOMAIN})")
    p.add_argument("--interface", default=DEFAULT_INTERFACE, help="the robot's DDS interface (loopback only)")
    p.add_argument("--ros-domain", type=int, default=None, help="ROS_DOMAIN_ID of the graph (default: $ROS_DOMAIN_ID, else picked, non-zero)")
    p.add_argument("--ramp-time-s", type=float, default=DEFAULT_RAMP_S, help="the bridge's ramp to the default pose (on the gantry)")
    p.add_argument("--realtime", action="store_true",
                   help="schedule like a real-time deployment (needs root or CAP_SYS_NICE): the sim's threads "
                        f"SCHED_FIFO {REALTIME['sim_fifo']} (physics does not wait for a CPU), the bridge's writer "
                        f"SCHED_FIFO {REALTIME['bridge_writer_fifo']} (its writer_priority), every node at nice "
                        f"{REALTIME['nice']}; keeps the graph real-time while other work loads the machine")
    p.add_argument("--launch-settings", action="store_true",
                   help="run the nodes with exactly the launch file's settings (default: shorter motion windows at "
                        "25 Hz, which the policy cannot tell apart, and /joint_states at 100 Hz, to save CPU; see "
                        "lighter_settings)")


def register(subparsers) -> None:
    p = subparsers.add_parser("sim2sim", help="run the node graph (sim, bridge, policy, motion-target source) as "
                                             "processes and play one clip, or drive the planner with a /cmd_vel script")
    p.add_argument("--motion", help="clip library name (e.g. walk_stand) or a clip file (sources player and stream)")
    p.add_argument("--script", help="/cmd_vel script for --source planner, e.g. config/cmd_vel_script.yaml")
    p.add_argument("--seconds", type=float, default=None,
                   help="score this much of the clip or script (default: all of it)")
    p.add_argument("--report", help="write the JSON report here")
    p.add_argument("--markdown", help="--source planner: write the per-segment velocity table here")
    p.add_argument("--keep-logs", help="keep the nodes' logs, the sim's report and trace in this directory")
    p.add_argument("--source", choices=tuple(graph.SOURCES), default=graph.DEFAULT_SOURCE,
                   help="what feeds /gmt/motion_target: the clip player (default), gmt_stream with the clip "
                        "streamed live by a producer process (gmt-ros stream-clip; options --stream-*), or the "
                        "velocity planner driven by --script on /cmd_vel")
    from gmt_ros.tools.stream_producer import add_link_options

    add_link_options(p, prefix="stream-")
    p.add_argument("--compare-player", action="store_true",
                   help="then play the same clip through the player and report the errors against the clip as "
                        "ratios (stream / player)")
    p.add_argument("--external-sim", action="store_true",
                   help="do not start a simulator: run bridge, policy and player against the one already running on "
                        "--interface/--domain (gmt-ros-sim --hold-until-release, or Unitree's with --profile "
                        "unitree_mujoco), engage, release its gantry, play the clip")
    p.add_argument("--profile", default="g1", choices=tuple(graph.BRIDGE_PROFILES),
                   help="--external-sim: the bridge's profile (unitree_mujoco for Unitree's Python simulator)")
    _common(p)
    p.set_defaults(func=cmd_sim2sim)

    p = subparsers.add_parser("sim2sim-all", help="every shipped clip through the node graph; prints the README table")
    p.add_argument("--json", help="write all reports here")
    p.add_argument("--markdown", help="write the markdown table here")
    p.add_argument("--keep-logs", help="keep each run's logs under DIR/<clip>/")
    _common(p)
    p.set_defaults(func=cmd_sim2sim_all)
