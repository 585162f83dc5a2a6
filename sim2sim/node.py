"""`python -m sim2sim.node`: the simulated G1 as a robot on unitree DDS (no ROS in this process).

    python -m sim2sim.node [--config config/sim2sim.yaml] [--interface lo] [--domain 1]
        [--mode-machine 5] [--seconds S] [--report out/sim2sim_report.json]
        [--start-motion NAME_OR_PATH] [--hold-start-s S] [--remote-script "2.0:A,5.0:L1+B@1.0"]
        [--allow-network] [--trace run_trace.npz] [--fault SPEC ...]

It speaks only the robot's DDS protocol (rt/lowcmd in, rt/lowstate out; see sim2sim.sdk_robot for
rates, the gantry and the remote script), on loopback unless --allow-network is given.

Settings, later ones winning: built-in defaults, the environment (GMT_ROS_DDS_DOMAIN,
GMT_ROS_DDS_INTERFACE), the YAML file (keys = the long option names with '_'; null = not set),
the command line. Runs until SIGINT/SIGTERM or --seconds of sim time, then prints one summary line
and writes the JSON report (with --trace also the 50 Hz trace of sim2sim.trace, as .npz).
Exit status: 0 after a run, 2 for bad settings, 1 if the run failed.

``--fault SPEC`` (repeatable; several specs may be joined by ';') injects faults for the fault-injection
suite (``gmt-ros faults``, docs/FAULTS.md): see sim2sim.fault_injection for the specs.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

import yaml

from gmt_ros.core import process_tuning
from sim2sim.gantry import StartPose, start_pose_from_clip
from sim2sim.robot_config import SimRobotConfig
from sim2sim.sdk_robot import SimRobotServer

_CONFIG = SimRobotConfig()  # the server's own defaults, not a copy of them
DEFAULTS = {
    "interface": _CONFIG.interface,
    "domain": _CONFIG.domain,  # Unitree's simulators use domain 1 on lo; the robot uses 0 on its wired port
    "mode_machine": _CONFIG.mode_machine,
    "seconds": None,
    "report": None,
    "start_motion": None,
    "hold_start_s": _CONFIG.hold_start_s,
    "hold_until_release": _CONFIG.hold_until_release,
    "remote_script": None,
    "seed": _CONFIG.seed,
    "dr": _CONFIG.dr,
    "command_timeout_s": _CONFIG.command_timeout_s,
    "max_catchup_s": _CONFIG.max_catchup_s,
    "log_level": "INFO",
    "allow_network": False,
    "trace": None,
    "fault": None,
}


class UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sim2sim.node", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", help="YAML file with any of the settings below")
    p.add_argument("--interface", help="network interface for DDS (default lo)")
    p.add_argument("--domain", type=int, help="DDS domain id (default $GMT_ROS_DDS_DOMAIN or 1)")
    p.add_argument("--mode-machine", type=int, help="mode_machine this robot reports and accepts (default 5, 29-DoF)")
    p.add_argument("--seconds", type=float, help="stop after this much sim time (default: until a signal)")
    p.add_argument("--report", help="write the JSON report here on exit")
    p.add_argument("--start-motion", help="start in this clip's first frame (library name or path)")
    p.add_argument("--hold-start-s", type=float, help="weld the pelvis in place for the first S seconds (gantry)")
    p.add_argument("--hold-until-release", action=argparse.BooleanOptionalAction, default=None,
                   help="hold the pelvis until an operator releases it on rt/gmt/sim/gantry (gmt-ros operate "
                        "engage --release-gantry), instead of after --hold-start-s")
    p.add_argument("--remote-script", help='timed remote presses "T:BUTTONS[@DUR],...", e.g. "2.0:A,5.0:L1+B@1.0"')
    p.add_argument("--seed", type=int)
    p.add_argument("--dr", help="domain-randomization preset (none, gmt, hard) or YAML file; drawn with --seed")
    p.add_argument("--trace", help="record the robot at 50 Hz with the wall clock (sim2sim.trace) and write it here (.npz) on exit")
    p.add_argument("--fault", action="append",
                   help="inject a fault (repeatable; see sim2sim.fault_injection), e.g. lowstate_stop@8.0, "
                        "state_bad_crc@8.0, lowstate_delay@8.0:0.2±0.05, push@8.0:3.0, press@8.0:L1+R1, dead_slots:13,14")
    p.add_argument("--command-timeout-s", type=float, help="a silence longer than this counts as a command gap")
    p.add_argument("--max-catchup-s", type=float, help="drop a real-time backlog longer than this")
    p.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    p.add_argument("--allow-network", action="store_true", default=None,
                   help="allow an interface other than lo (a fake robot on a real robot's network would "
                        "mix its lowstate with the real one)")
    return p


def load_yaml_settings(path) -> dict:
    """Settings from a YAML mapping; an unknown key is an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UsageError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"config file {path} must hold a mapping of settings, got {type(data).__name__}")
    unknown = sorted(set(data) - set(DEFAULTS))
    if unknown:
        raise UsageError(f"config file {path}: unknown setting(s) {unknown}; known: {', '.join(sorted(DEFAULTS))}")
    return {k: v for k, v in data.items() if v is not None}


def resolve_settings(args: argparse.Namespace, environ=os.environ) -> dict:
    settings = dict(DEFAULTS)
    if environ.get("GMT_ROS_DDS_DOMAIN"):
        try:
            settings["domain"] = int(environ["GMT_ROS_DDS_DOMAIN"])
        except ValueError:
            raise UsageError(f"GMT_ROS_DDS_DOMAIN must be an integer, got {environ['GMT_ROS_DDS_DOMAIN']!r}") from None
    if environ.get("GMT_ROS_DDS_INTERFACE"):
        settings["interface"] = environ["GMT_ROS_DDS_INTERFACE"]
    if args.config:
        settings.update(load_yaml_settings(args.config))
    settings.update({k: v for k, v in vars(args).items() if k in DEFAULTS and v is not None})
    return settings


def make_server(settings: dict) -> SimRobotServer:
    try:
        config = SimRobotConfig(
            domain=settings["domain"],
            interface=settings["interface"],
            mode_machine=settings["mode_machine"],
            hold_start_s=float(settings["hold_start_s"]),
            hold_until_release=bool(settings["hold_until_release"]),
            remote_script=settings["remote_script"],
            command_timeout_s=float(settings["command_timeout_s"]),
            max_catchup_s=float(settings["max_catchup_s"]),
            seed=settings["seed"],
            dr=str(settings["dr"]),
        )
        config.validate()
        seconds = settings["seconds"]
        if seconds is not None and not float(seconds) > 0:
            raise ValueError(f"seconds must be positive, got {seconds}")
        start = start_pose_from_clip(settings["start_motion"]) if settings["start_motion"] else StartPose()
        faults = None
        if settings["fault"]:
            from sim2sim.fault_injection import FaultInjector, parse_faults

            faults = FaultInjector(parse_faults(settings["fault"]), seed=config.seed)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    trace = None
    if settings["trace"]:
        from sim2sim.trace import SimTraceRecorder

        trace = SimTraceRecorder()
    return SimRobotServer(config, start, trace=trace, faults=faults)


def main(argv=None, on_state_write=None) -> int:
    """``on_state_write``: called with the tick of each rt/lowstate just before it is written
    (measurement tools: gmt-ros bench)."""
    early_signals: list[int] = []  # before the server exists (building MuJoCo takes a second): stop after

    def on_early_signal(signum, _frame):
        early_signals.append(signum)

    signal.signal(signal.SIGINT, on_early_signal)
    signal.signal(signal.SIGTERM, on_early_signal)
    process_tuning.short_switch_interval()  # the paced physics loop shares the GIL with the lowcmd listener
    args = build_parser().parse_args(argv)
    try:
        settings = resolve_settings(args)
        if settings["interface"] != "lo" and not settings["allow_network"]:
            raise UsageError(f"interface {settings['interface']!r} is not loopback; a simulated robot belongs on "
                             f"'lo' (pass --allow-network to publish it on a real network)")
        logging.basicConfig(level=settings["log_level"], format="%(asctime)s %(name)s %(levelname)s: %(message)s")
        server = make_server(settings)
        server.on_state_write = on_state_write
    except UsageError as exc:
        print(f"sim2sim.node: error: {exc}", file=sys.stderr)
        return 2
    log = logging.getLogger("sim2sim.node")
    if server.config.interface != "lo":
        log.warning("publishing a simulated robot on interface %r (not loopback)", server.config.interface)

    def on_signal(signum, _frame):
        log.info("%s: stopping", signal.Signals(signum).name)
        server.stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if early_signals:
        log.info("%s while starting: stopping", signal.Signals(early_signals[0]).name)
        return 0
    try:
        server.open()
    except (ValueError, RuntimeError) as exc:
        print(f"sim2sim.node: error: {exc}", file=sys.stderr)
        return 2
    process_tuning.freeze_startup_objects()
    status = 0
    try:
        log.info("start pose: %s; gantry %s; running%s", server.start_pose.source,
                 "until released" if server.config.hold_until_release else f"{server.config.hold_start_s:.2f} s",
                 f" for {settings['seconds']} s" if settings["seconds"] else " until SIGINT/SIGTERM")
        server.run(seconds=float(settings["seconds"]) if settings["seconds"] else None)
    except Exception:
        log.exception("the simulated robot stopped on an error")
        status = 1
    finally:
        report = server.report()
        report["exit_status"] = status
        print(server.summary_line(report), flush=True)
        if settings["report"]:
            server.write_report(settings["report"], report)
        if server.trace is not None:
            server.trace.save(settings["trace"])
        server.close()
        process_tuning.ignore_signals_for_exit()
    return status


if __name__ == "__main__":
    sys.exit(main())
