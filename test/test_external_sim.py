"""`gmt-ros sim2sim --external-sim`: the graph (bridge, policy, player) and the scoring against a
simulated robot started by hand (gmt-ros-sim --hold-until-release) on loopback. In its own module so
that no other graph runs beside it on a 2-core machine. The simulator at nice -15 and the graph with
--realtime, as a deployment beside other work would run them (see test_operate)."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from host_steal import StealMeter

from gmt_ros.tools.process_graph import popen_in_own_session

REPO = Path(__file__).resolve().parents[1]
GMT_ROS = str(Path(sys.executable).parent / "gmt-ros")
DOMAIN = os.environ["GMT_ROS_DDS_DOMAIN"]
ENV = dict(os.environ, PYTHONUNBUFFERED="1", ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
NICE = -15



def test_sim2sim_external_sim_runs_the_graph_against_a_simulator_started_by_hand(tmp_path):
    domain = str(int(DOMAIN) + 1)  # its own robot and ROS graph (test_operate's graph may still be stopping)
    env = dict(ENV, ROS_DOMAIN_ID=str(int(os.environ["ROS_DOMAIN_ID"]) + 1))
    sim_log = open(tmp_path / "sim.log", "w")
    sim = popen_in_own_session([str(Path(sys.executable).parent / "gmt-ros-sim"), "--config", str(REPO / "config" / "sim2sim.yaml"),
                            "--domain", domain, "--hold-until-release", "--report", str(tmp_path / "sim.json")],
                           NICE, stdout=sim_log, stderr=subprocess.STDOUT, env=env)
    try:
        with StealMeter() as steal:
            proc = subprocess.run([GMT_ROS, "sim2sim", "--motion", "gmt/squat", "--external-sim", "--realtime", "--domain", domain,
                                   "--report", str(tmp_path / "r.json"), "--keep-logs", str(tmp_path / "logs")],
                                  check=False, capture_output=True, text=True, env=env, timeout=240)
    finally:
        sim.send_signal(signal.SIGINT)
        sim.wait(timeout=30)
        sim_log.close()
    if proc.returncode != 0 and "stale" in proc.stdout:  # a watchdog fired: was it the host?
        steal.skip_if_starved(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "gmt/squat (external simulator, profile g1): played to its end, no fault" in proc.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["operator"]["engaged"] and report["operator"]["gantry_released"]
    sim_report = json.loads((tmp_path / "sim.json").read_text())
    assert not sim_report["robot"]["fell"] and sim_report["lowcmd"]["bad_crc"] == 0
