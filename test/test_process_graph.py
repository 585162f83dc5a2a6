"""gmt_ros.tools.process_graph: the graph's nodes as real processes (the player node: it needs no
robot), their logs, early deaths named with their log tail, clean stops, and no orphans even when
the runner itself is killed with SIGKILL."""
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gmt_ros import graph
from gmt_ros.tools.process_graph import NodeFailedError, ProcessGraph, autogroup_nice, executable_argv, parse_autogroup

ENV = dict(os.environ, ROS_DOMAIN_ID="63", ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", PYTHONUNBUFFERED="1")


def _gone(pid, timeout_s=10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            stat = Path(f"/proc/{pid}/stat").read_text()
            if stat[stat.rindex(")") + 2] == "Z":  # exited, waiting for whoever adopted it to reap it
                return True
        except (ProcessLookupError, FileNotFoundError):
            return True
        try:  # our own child: reap it if it is a zombie
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:
            pass
        time.sleep(0.05)
    return False


def test_executable_is_the_console_script_else_python_m(tmp_path):
    venv_bin = Path(sys.executable).parent
    assert executable_argv(graph.PLAYER, venv_bin) == [str(venv_bin / "gmt-ros-player")]
    assert executable_argv(graph.PLAYER, tmp_path) == [sys.executable, "-m", "gmt_ros.nodes.motion_player_node"]


def test_command_line_is_the_launch_files(tmp_path):
    g = ProcessGraph("sim2sim", tmp_path, arguments={"dds_domain": "9"}, extra={"bridge": {"ramp_time_s": "1.5"}})
    argv = g.argv("bridge")
    i = argv.index("--ros-args")
    assert argv[i + 1:i + 3] == ["--params-file", str(graph.config_path(graph.BRIDGE))]
    assert "dds_domain:=9" in argv and "dry_run:=false" in argv and argv[-2:] == ["-p", "ramp_time_s:=1.5"]
    sim = g.argv("sim")
    assert sim[sim.index("--config") + 1] == str(graph.config_path(graph.SIM)) and sim[-8:] == ["--interface", "lo", "--domain", "9", "--dr", "none", "--seed", "0"]
    with pytest.raises(ValueError, match="no node 'planner'"):
        g.start("planner")
    with pytest.raises(ValueError, match=r"settings for node\(s\) \['planner'\]"):
        ProcessGraph("sim2sim", tmp_path, extra={"planner": {}})
    with pytest.raises(ValueError, match="unknown launch argument"):
        ProcessGraph("sim2sim", tmp_path, arguments={"speed": "2"})


def test_a_node_that_dies_is_named_with_its_log_tail(tmp_path):
    with ProcessGraph("sim2sim", tmp_path, extra={"player": {"rate_hz": "-1.0"}}, env=ENV) as g:
        proc = g.start("player")
        assert proc.popen.wait(timeout=60) != 0
        with pytest.raises(NodeFailedError) as info:
            g.check_alive()
    assert info.value.key == "player"
    text = str(info.value)
    assert "the player node exited early with code 1" in text and "rate_hz must be positive" in text
    assert (tmp_path / "player.log").read_text().startswith("$ ")  # the command line heads the log


def test_stop_ends_the_node_cleanly_with_sigint(tmp_path):
    with ProcessGraph("sim2sim", tmp_path, env=ENV) as g:
        proc = g.start("player")
        deadline = time.monotonic() + 60
        while "clips" not in (tmp_path / "player.log").read_text():  # its start-up line
            assert proc.running() and time.monotonic() < deadline, g.log_tail("player")
            time.sleep(0.1)
        assert g.cpu_seconds()["player"] > 0
        code = g.stop("player")
    assert code == 0 and proc.stop_signal == "SIGINT"
    assert _gone(proc.pid, 1.0)
    assert g.dead() == {}  # stopped on purpose is not an early death


def test_no_orphan_when_the_runner_is_killed(tmp_path):
    """The runner dies with SIGKILL (no finally runs): the kernel's parent-death signal ends the node."""
    script = textwrap.dedent(f"""
        import os, sys, time
        from gmt_ros.tools.process_graph import ProcessGraph
        g = ProcessGraph("sim2sim", {str(tmp_path)!r}, env=dict(os.environ))
        print(g.start("player").pid, flush=True)
        time.sleep(120)
    """)
    runner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        node_pid = int(runner.stdout.readline())
        time.sleep(1.0)
        os.kill(node_pid, 0)  # running
        runner.kill()
        runner.wait(timeout=10)
        assert _gone(node_pid, 15.0), "the node outlived its runner"
    finally:
        runner.kill()
        runner.wait(timeout=10)


def test_autogroup_nice_is_read_only_where_the_kernel_has_autogroups():
    # With sched_autogroup_enabled=0 the file exists but is empty (seen on a CI host).
    assert parse_autogroup("/autogroup-640 nice -10\n") == -10
    assert parse_autogroup("") is None
    assert parse_autogroup("/autogroup-640 nice\n") is None
    assert autogroup_nice(2 ** 30) is None  # no such process
