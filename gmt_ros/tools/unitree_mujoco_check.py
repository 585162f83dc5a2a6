"""The stack against Unitree's own simulator, end to end: the figures of docs/UNITREE_MUJOCO.md.

    python -m gmt_ros.tools.unitree_mujoco_check [--simulate-dt 0.005] [--clip gmt/walk_stand]
        [--profile unitree_mujoco|g1] [--archive PATH] [--nice N] [--keep-logs DIR] [--json OUT]

Starts Unitree's simulator headless (``sim2sim.unitree_mujoco_headless``: its bridge file
unchanged, its elastic band holding the robot), then the real robot's graph (bridge with the
chosen profile, policy, player: ``gmt_ros.graph`` "real", not a dry run) on loopback in
$GMT_ROS_DDS_DOMAIN (else 1), then ``gmt-ros operate bringup``: the robot's state, the supervisor
to policy, the band released, the clip played. Prints and writes one JSON report: the operator's
(engaged, played to the end, fault, the bridge's rates and the supervisor's clip counts), the
simulator's (pelvis height, tilt, torque saturation after the release) and, when something
failed, the bridge's log tail. ``--nice`` (e.g. -15, needs root or CAP_SYS_NICE) runs the
simulator and the nodes at that priority, as a deployment would beside other work (the tests do,
so that a loaded CI machine does not starve the graph into its 100 ms watchdogs). Exit 0 when the run happened (whatever the robot did), 1 when a
process failed to run.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gmt_ros.tools.process_graph import ProcessGraph, popen_in_own_session, tail

ARCHIVE_NAME = "unitree_mujoco-c598f10.tar.gz"


def default_archive() -> Path:
    vendor = os.environ.get("GMT_ROS_VENDOR") or str(Path(__file__).resolve().parents[2] / "shared" / "vendor")
    return Path(vendor) / "unitree_mujoco" / ARCHIVE_NAME


def run_check(log_dir: Path, simulate_dt: float = 0.005, clip: str | None = "gmt/walk_stand",
              profile: str = "unitree_mujoco", archive: Path | None = None, domain: int | None = None,
              link_timeout_s: float = 30.0, nice: int = 0) -> dict:
    archive = archive or default_archive()
    if not archive.is_file():
        raise FileNotFoundError(f"Unitree's simulator archive not found: {archive} (set GMT_ROS_VENDOR)")
    domain = domain if domain is not None else int(os.environ.get("GMT_ROS_DDS_DOMAIN") or 1)
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", PYTHONUNBUFFERED="1",
               RCUTILS_LOGGING_BUFFERED_STREAM="1")
    sim_report = log_dir / "unitree_mujoco.json"
    sim_log = open(log_dir / "unitree_mujoco.log", "w")
    sim = popen_in_own_session([sys.executable, "-m", "sim2sim.unitree_mujoco_headless", "--archive", str(archive),
                            "--workdir", str(log_dir / "unitree_mujoco_src"), "--simulate-dt", str(simulate_dt),
                            "--domain", str(domain), "--report", str(sim_report)],
                           nice, stdout=sim_log, stderr=subprocess.STDOUT, env=env)
    out: dict = {"simulate_dt": simulate_dt, "profile": profile, "clip": clip, "domain": domain}
    try:
        out.update(run_graph_against(log_dir, domain, clip, profile, link_timeout_s, env,
                                     before_stop=lambda: _stop(sim), nice=nice))  # the measurement ends while the graph holds
    finally:
        _stop(sim)
        sim_log.close()
    out["simulator"] = json.loads(sim_report.read_text()) if sim_report.is_file() else None
    if out["simulator"] is None:
        out["simulator_log_tail"] = tail(log_dir / "unitree_mujoco.log", 15).splitlines()
    return out


def run_graph_against(log_dir: Path, domain: int, clip: str | None, profile: str = "g1", link_timeout_s: float = 30.0,
                      env=None, before_stop=None, nice: int = 0) -> dict:
    """The real robot's graph (bridge with ``profile``, policy, player; writing rt/lowcmd) against
    whatever robot or simulator is on loopback in ``domain``, brought up and driven by ``gmt-ros
    operate bringup`` (``clip`` played, the gantry/band released where the simulator has one).
    Also ``gmt-ros sim2sim --external-sim``."""
    op_report = Path(log_dir) / "operator.json"
    out: dict = {}
    with ProcessGraph("real", log_dir, arguments={"interface": "lo", "dds_domain": str(domain), "dry_run": "false",
                                                  "profile": profile}, env=env, nice=nice) as graph:
        for key in ("bridge", "policy", "player"):
            graph.start(key)
        cmd = [str(Path(sys.executable).parent / "gmt-ros"), "operate", "bringup", "--release-gantry",
               "--dds-domain", str(domain), "--exit-when-done", "--report", str(op_report),
               "--timeout", str(link_timeout_s)]
        if clip:
            cmd += ["--play", clip]
        op = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
        out["operator_exit"] = op.returncode
        out["operator_output"] = (op.stdout + op.stderr).strip().splitlines()[-12:]
        out["operator"] = json.loads(op_report.read_text()) if op_report.is_file() else None
        if before_stop is not None:
            before_stop()
        out["node_exit_codes"] = {k: p.poll() for k, p in graph.processes.items()}
        out["bridge_log_tail"] = graph.log_tail("bridge", 15).splitlines()
    return out


def _stop(proc) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def summary(r: dict) -> str:
    op, sim = r.get("operator") or {}, r.get("simulator") or {}
    after = sim.get("after_release") or {}
    bridge = op.get("bridge") or {}
    clips = (op.get("supervisor_clips") or {})
    return (f"unitree_mujoco SIMULATE_DT {r['simulate_dt']} profile {r['profile']}: operator exit {r['operator_exit']}, "
            f"engaged {op.get('engaged')}, {r['clip']} to the end {op.get('played_to_end')}, fault {op.get('fault')} | "
            f"lowstate {bridge.get('lowstate_rate_hz')} Hz, /joint_states {bridge.get('joint_states_rate_hz')} Hz | "
            f"after the band: min pelvis {after.get('min_pelvis_height_m')} m, max tilt {after.get('max_tilt_rad')} rad, "
            f"fell {after.get('fell')}, torque at the limit (share of steps) {after.get('torque_saturation_share')} | "
            f"bridge clipped {clips}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m gmt_ros.tools.unitree_mujoco_check", description=__doc__.split("\n\n")[0])
    p.add_argument("--simulate-dt", type=float, default=0.005)
    p.add_argument("--clip", default="gmt/walk_stand", help="clip to play ('' for none)")
    p.add_argument("--profile", default="unitree_mujoco", choices=("unitree_mujoco", "g1"))
    p.add_argument("--archive", type=Path, help=f"default: $GMT_ROS_VENDOR/unitree_mujoco/{ARCHIVE_NAME}")
    p.add_argument("--nice", type=int, default=0, help="the simulator's and the nodes' nice value (negative: root)")
    p.add_argument("--keep-logs", help="logs and reports here (default: a temporary directory)")
    p.add_argument("--json", help="write the report here")
    args = p.parse_args(argv)
    log_dir = Path(args.keep_logs or tempfile.mkdtemp(prefix="unitree_mujoco_check_"))
    t0 = time.time()
    report = run_check(log_dir, args.simulate_dt, args.clip or None, args.profile, args.archive, nice=args.nice)
    report["wall_s"] = round(time.time() - t0, 1)
    print(summary(report))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report.get("simulator") is not None else 1


if __name__ == "__main__":
    sys.exit(main())
