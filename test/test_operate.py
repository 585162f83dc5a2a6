"""`gmt-ros operate` against a simulated robot started by hand (gmt-ros-sim --hold-until-release)
and the real robot's graph (bridge, policy, player) on loopback: status, engage with the gantry
release, play, stop, e-stop; and what it says when nothing answers. The simulator and the nodes
run at nice -15, as a deployment beside other work would (and as the graph tests do with
--realtime): on a loaded 2-core machine they could otherwise starve into the 100 ms watchdogs,
which says nothing about the operator under test. The bridge keeps its shipped 0.1 s PD-target
watchdog although every `gmt-ros operate` this test starts is a new DDS participant joining the
running graph: with Fast DDS's shared memory that used to hold the graph's deliveries for up to
330 ms, and gmt_ros now runs Fast DDS without it (docs/SAFETY.md, "New participants")."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gmt_ros.tools.process_graph import ProcessGraph, popen_in_own_session

REPO = Path(__file__).resolve().parents[1]
GMT_ROS = str(Path(sys.executable).parent / "gmt-ros")
DOMAIN = os.environ["GMT_ROS_DDS_DOMAIN"]
ENV = dict(os.environ, PYTHONUNBUFFERED="1", ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
NICE = -15



def operate(*args, timeout=90):
    return subprocess.run([GMT_ROS, "operate", *args, "--dds-domain", DOMAIN], check=False, capture_output=True, text=True,
                          env=ENV, timeout=timeout)


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    logs = tmp_path_factory.mktemp("operate")
    sim_log = open(logs / "sim.log", "w")
    sim = popen_in_own_session([str(Path(sys.executable).parent / "gmt-ros-sim"), "--config", str(REPO / "config" / "sim2sim.yaml"),
                            "--domain", DOMAIN, "--hold-until-release", "--report", str(logs / "sim.json")],
                           NICE, stdout=sim_log, stderr=subprocess.STDOUT, env=ENV)
    g = ProcessGraph("real", logs, arguments={"interface": "lo", "dds_domain": DOMAIN, "dry_run": "false"}, env=ENV,
                     nice=NICE)
    try:
        for key in ("bridge", "policy", "player"):
            g.start(key)
        yield g, logs
    finally:
        g.stop_all()
        sim.send_signal(signal.SIGINT)
        try:
            sim.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(sim.pid, signal.SIGKILL)
        sim_log.close()


def test_operate_drives_the_graph_through_engage_play_stop_and_estop(graph):
    g, logs = graph
    status = operate("status")
    assert status.returncode == 0, status.stderr
    assert re.search(r"supervisor: zero_torque \| fault: none \| dry run: no", status.stdout), status.stdout
    assert "start-up check: passed" in status.stdout or "start-up check: pending" in status.stdout

    engaged = operate("engage", "--release-gantry")
    assert engaged.returncode == 0, engaged.stdout + engaged.stderr
    assert engaged.stdout.index("supervisor in policy") < engaged.stdout.index("gantry released")
    assert "gantry released at" in (logs / "sim.log").read_text()

    # loop, not play: the 5 s clip must still be playing when the status below asks, however slow
    # this machine is (a played clip was already blending out under load).
    played = operate("loop", "gmt/squat")
    assert played.returncode == 0 and "loop gmt/squat: taken" in played.stdout, played.stdout + played.stderr
    time.sleep(2.0)
    status = operate("status")
    assert "supervisor: policy | fault: none" in status.stdout
    assert re.search(r"player: (blending_in|playing) gmt/squat .*\| loop True", status.stdout), status.stdout

    stopped = operate("stop-clip")
    assert stopped.returncode == 0 and "stop-clip: stop" in stopped.stdout, stopped.stdout + stopped.stderr
    time.sleep(1.5)
    status = operate("status")
    assert re.search(r"player: (blending_out|idle)", status.stdout), status.stdout
    assert "supervisor: policy | fault: none" in status.stdout  # standing under the policy

    estop = operate("estop")
    assert estop.returncode == 0, estop.stdout + estop.stderr
    status = operate("status")
    assert re.search(r"supervisor: damping \| fault: .*e-?stop", status.stdout, re.I), status.stdout
    refused = operate("policy")  # a latched fault: the supervisor refuses and operate says so, exit 1
    assert refused.returncode == 1 and "policy:" in refused.stdout, refused.stdout
    for key in ("bridge", "policy", "player"):
        assert g.processes[key].running(), g.log_tail(key)


def test_operate_names_what_did_not_answer():
    env = dict(ENV, ROS_DOMAIN_ID="231")  # nobody there
    proc = subprocess.run([GMT_ROS, "operate", "status", "--timeout", "2"], check=False, capture_output=True, text=True, env=env,
                          timeout=60)
    assert proc.returncode == 1
    assert "no /gmt/supervisor/state: is the bridge running in this ROS_DOMAIN_ID (231)?" in proc.stderr, proc.stderr
    bad = subprocess.run([GMT_ROS, "operate", "play"], check=False, capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 2 and "'play' needs a clip name" in bad.stderr
