"""Every console script answers --help and exits 0 without starting anything; every node stops
cleanly (exit 0, no traceback) on SIGINT and on SIGTERM."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SCRIPTS = sorted(re.findall(r'"([\w-]+) = [\w.]+:main"', (REPO / "setup.py").read_text()))
NODES = {  # script -> a line its log prints once it is up
    "gmt-ros-bridge": "bridge up:",
    "gmt-ros-policy": "joint targets to",
    "gmt-ros-player": "clips (",
    "gmt-ros-stream": "windows of",
    "gmt-ros-planner": "searchable frames",
    "gmt-ros-sim": "running until SIGINT/SIGTERM",
}
ENV = dict(os.environ, PYTHONUNBUFFERED="1", RCUTILS_LOGGING_BUFFERED_STREAM="0")


def test_every_console_script_is_checked_here():
    assert set(NODES) | {"gmt-ros", "gmt-ros-recorder"} == set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_prints_usage_and_exits_0(script):
    proc = subprocess.run([str(BIN / script), "--help"], capture_output=True, text=True, timeout=60, env=ENV, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage:"), proc.stdout[:300]
    if script in ("gmt-ros-bridge", "gmt-ros-policy", "gmt-ros-player", "gmt-ros-stream", "gmt-ros-planner",
                  "gmt-ros-recorder"):
        assert "Parameters (defaults" in proc.stdout and "--ros-args" in proc.stdout
    if script == "gmt-ros-bridge":
        assert "dry_run (bool, default True)" in proc.stdout and "network_interface" in proc.stdout
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_every_node_stops_cleanly_on_a_signal(sig, tmp_path):
    """Every node script side by side (no robot: the bridge waits for one), the signal once each
    is up, then: exit 0, and no traceback in what they printed."""
    procs = {}
    for script in NODES:
        log = open(tmp_path / f"{script}.log", "w")
        args = [str(BIN / script)]
        if script == "gmt-ros-sim":
            args += ["--config", str(REPO / "config" / "sim2sim.yaml")]
        else:
            cfg = {"gmt-ros-bridge": "bridge.yaml", "gmt-ros-policy": "policy.yaml", "gmt-ros-player": "motion_player.yaml",
                   "gmt-ros-stream": "stream.yaml", "gmt-ros-planner": "planner.yaml"}
            args += ["--ros-args", "--params-file", str(REPO / "config" / cfg[script])]
        procs[script] = (subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=ENV, start_new_session=True), log)
    try:
        deadline = time.monotonic() + 90
        pending = set(NODES)
        while pending and time.monotonic() < deadline:
            for script in list(pending):
                text = (tmp_path / f"{script}.log").read_text()
                if NODES[script] in text or procs[script][0].poll() is not None:
                    pending.discard(script)
            time.sleep(0.2)
        assert not pending, {s: (tmp_path / f"{s}.log").read_text()[-2000:] for s in pending}
        time.sleep(1.0)
        for proc, _ in procs.values():
            proc.send_signal(sig)
        codes = {s: p.wait(timeout=30) for s, (p, _) in procs.items()}
    finally:
        for proc, log in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            log.close()
    logs = {s: (tmp_path / f"{s}.log").read_text() for s in NODES}
    for script in NODES:
        assert codes[script] == 0, (script, codes[script], logs[script][-3000:])
        assert "Traceback" not in logs[script], (script, logs[script][-3000:])
