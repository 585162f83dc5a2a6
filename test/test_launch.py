"""Launch files: the argument table on its own, then both files run for real.

The real `launch` 3.7.1 and `launch_ros` 0.28.0 (vendored sources, installed by scripts/setup.sh)
run each launch file from a colcon install space through `gmt-ros launch`, which sets up the
LaunchService as `ros2 launch` does. Those tests skip only where ../shared/vendor is absent.
The launches that run the whole graph in real time run at nice -15 (the launch and, inherited, every
node), as a deployment beside other work would (`sudo nice -n -15 ros2 launch ...`) and as the other
graph tests do: on a 2-core machine with one core busy, a node at normal priority can starve past
the 100 ms watchdogs, which says nothing about the launch files under test (headroom is measured
by `gmt-ros bench` and the pinned `gmt-ros sim2sim-all`).
"""
import ast
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO, installed_env, require_vendor

from gmt_ros import graph
from gmt_ros.tools.process_graph import popen_in_own_session

LAUNCH_FILES = {"sim2sim": REPO / "launch" / "sim2sim.launch.py", "real": REPO / "launch" / "g1_real.launch.py"}
GMT_ROS = Path(sys.executable).parent / "gmt-ros"
DDS_DOMAIN = os.environ["GMT_ROS_DDS_DOMAIN"]
GRAPH_NICE = -15  # launches that run the graph in real time (module docstring)


def console_scripts():
    text = (REPO / "setup.py").read_text()
    return dict(re.findall(r'"([\w-]+) = ([\w.]+):main"', text))


# ------------------------------------------------------------------------------------------------
# The graph's launch arguments (no launch needed)


@pytest.mark.parametrize("kind", sorted(LAUNCH_FILES))
def test_launch_file_parses_and_defines_generate_launch_description(kind):
    tree = ast.parse(LAUNCH_FILES[kind].read_text())
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in names


def test_graph_executables_are_console_scripts_of_existing_modules():
    scripts = console_scripts()
    for kind, specs in list(graph.GRAPHS.items()) + [("source", tuple(graph.SOURCES.values()))]:
        for spec in specs:
            assert scripts.get(spec.executable) == spec.module, (kind, spec.executable)
            assert importlib.util.find_spec(spec.module) is not None
            assert graph.config_path(spec).is_file()
            if spec.ros:  # the YAML's top-level key must be the node's name or it is silently ignored
                assert spec.node_name in yaml.safe_load(graph.config_path(spec).read_text())
                source = Path(importlib.util.find_spec(spec.module).origin).read_text()
                assert f'NODE_NAME = "{spec.node_name}"' in source


def test_real_graph_has_no_simulator_and_defaults_to_dry_run_on_domain_0():
    assert graph.SIM not in graph.GRAPHS["real"]
    assert graph.ARGUMENT_DEFAULTS["real"]["dry_run"] == "true"
    assert graph.ARGUMENT_DEFAULTS["real"]["dds_domain"] == "0"
    assert "engage" not in graph.ARGUMENT_DEFAULTS["real"]  # a person engages the real robot
    assert graph.ARGUMENT_DEFAULTS["sim2sim"]["interface"] == "lo"
    assert graph.ARGUMENT_DEFAULTS["sim2sim"]["dds_domain"] != "0"


def test_each_source_takes_the_players_place():
    for kind in graph.GRAPHS:
        for name, spec in graph.SOURCES.items():
            nodes = graph.graph_nodes(kind, name)
            assert spec in nodes and len(nodes) == len(graph.GRAPHS[kind])
            assert not set(graph.SOURCES.values()) - {spec} & set(nodes)
    assert graph.graph_nodes("sim2sim") == graph.GRAPHS["sim2sim"]
    with pytest.raises(ValueError, match="unknown motion-target source 'radio'; known: player"):
        graph.graph_nodes("sim2sim", "radio")


def test_every_argument_is_described_typed_and_its_default_valid():
    for kind, defaults in graph.ARGUMENT_DEFAULTS.items():
        for name in defaults:
            arg = graph.ARGUMENTS[name]
            assert len(arg.description) > 20 and arg.kind in ("str", "bool", "int"), name
            for key, _setting in arg.targets:
                assert key in {s.key for s in graph.GRAPHS["sim2sim"]} | {"operator"}, (name, key)
        typed = graph.typed_arguments(kind, {})
        assert typed["source"] == "player" and typed["strict_args"] is True


def test_unknown_or_malformed_arguments_are_refused_with_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown launch argument\(s\) dr_preset; known: interface, dds_domain"):
        graph.typed_arguments("sim2sim", {"dr_preset": "hard"})
    with pytest.raises(ValueError, match=r"unknown launch argument.*clip"):  # the real robot plays nothing by itself
        graph.typed_arguments("real", {"clip": "gmt/squat"})
    with pytest.raises(ValueError, match="dds_domain must be an integer, got 'one'"):
        graph.typed_arguments("sim2sim", {"dds_domain": "one"})
    with pytest.raises(ValueError, match="source must be one of player, stream, planner, got 'teleop'"):
        graph.typed_arguments("sim2sim", {"source": "teleop"})
    with pytest.raises(ValueError, match=r"unknown launch argument.*speed"):
        graph.settings_for(graph.BRIDGE, {"speed": "1"})


@pytest.mark.parametrize("text,value", [("true", True), ("False", False), ("1", True), ("0", False), ("yes", True),
                                        ("NO", False), ("on", True), ("off", False), (" true ", True)])
def test_booleans_as_people_type_them(text, value):
    assert graph.typed_arguments("real", {"dry_run": text})["dry_run"] is value


def test_a_bad_boolean_names_the_argument_and_the_accepted_words():
    with pytest.raises(ValueError, match=r"dry_run must be a boolean \(true/1/yes/on or false/0/no/off\), got 'maybe'"):
        graph.typed_arguments("real", {"dry_run": "maybe"})


# ------------------------------------------------------------------------------------------------
# Under the real launch / launch_ros, from a colcon install space


@pytest.fixture(scope="module")
def launch_env(install_space):
    require_vendor("ros2_launch", "launch_ros")
    return installed_env(install_space, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")


def gmt_launch(env, *args, timeout=120, nice=0):
    """`gmt-ros launch ARGS` to its end (at the absolute nice value ``nice``, 0: unchanged); past
    ``timeout`` the whole process group (the launch and every node it started) is killed before the
    test fails, so no node outlives the test."""
    proc = popen_in_own_session([str(GMT_ROS), "launch", *args], nice, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"the launch did not end within {timeout} s; its output:\n{(out + err)[-4000:]}") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_the_vendored_launch_packages_are_the_real_ones(launch_env):
    import importlib.metadata as md

    import launch_ros.actions  # noqa: F401 (imports composition_interfaces)

    assert md.version("launch") == "3.7.1" and md.version("launch_ros") == "0.28.0"
    import composition_interfaces.srv as srv

    assert srv.LoadNode.Request(package_name="x").package_name == "x"  # rosidl_generator_py's class


@pytest.mark.parametrize("file,kind", [("sim2sim.launch.py", "sim2sim"), ("g1_real.launch.py", "real")])
def test_show_args_lists_every_argument_with_its_description(launch_env, file, kind):
    proc = gmt_launch(launch_env, file, "--show-args", timeout=60)
    assert proc.returncode == 0, proc.stderr
    for name, default in graph.ARGUMENT_DEFAULTS[kind].items():
        assert f"'{name}':\n        {graph.ARGUMENTS[name].description}" in proc.stdout
        assert f"(default: {default!r})" in proc.stdout


@pytest.mark.parametrize("argument,expected", [
    ("dr_preset:=hard", r"unknown launch argument\(s\) dr_preset; known: interface, dds_domain, policy, dry_run"),
    ("dry_run:=maybe", r"dry_run must be a boolean \(true/1/yes/on or false/0/no/off\), got 'maybe'"),
    ("source:=teleop", r"source must be one of player, stream, planner, got 'teleop'"),
])
def test_refused_arguments_end_the_launch_before_any_node_starts(launch_env, argument, expected):
    proc = gmt_launch(launch_env, "sim2sim.launch.py", argument, f"dds_domain:={DDS_DOMAIN}", timeout=60)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert re.search(expected, out), out
    assert "process started" not in out


def test_sim2sim_launch_engages_releases_the_gantry_and_plays_a_clip_upright_to_the_end(launch_env, tmp_path):
    """Under the real LaunchService: the operator walks the supervisor to policy, only then the
    gantry is released, gmt/squat plays to its end, the launch exits 0 and every node stops cleanly."""
    report = tmp_path / "launch.json"
    proc = gmt_launch(launch_env, "sim2sim.launch.py", "clip:=gmt/squat", "exit_when_done:=yes", f"report:={report}",
                      f"dds_domain:={DDS_DOMAIN}", timeout=180, nice=GRAPH_NICE)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    summary = json.loads(report.read_text())
    assert summary["engaged"] and summary["gantry_released"] and summary["played_to_end"], summary
    assert summary["final_mode"] == "policy" and summary["final_fault"] is None
    sim = json.loads((tmp_path / "launch_sim.json").read_text())
    assert sim["config"]["hold_until_release"] is True
    assert sim["robot"]["fell"] is False and sim["robot"]["min_pelvis_height_after_hold_m"] > 0.4
    assert sim["lowcmd"]["bad_crc"] == 0 and sim["lowcmd"]["accepted"] > 2000
    # the order the operator saw: policy first, then the gantry
    assert out.index("supervisor in policy") < out.index("gantry released at") < out.index("played to its end")
    for name in ("sim", "gmt-ros-bridge", "gmt-ros-policy", "gmt-ros-player", "operator"):
        assert re.search(rf"\[{name}-\d+\]: process has finished cleanly", out), name
    assert "Traceback" not in out


def test_a_required_node_that_dies_fails_the_launch_naming_it(launch_env, tmp_path):
    # a contract whose ONNX file is missing: the bridge and the player start, the policy node dies
    shutil.copy(REPO / "models" / "gmt_student" / "contract.yaml", tmp_path / "contract.yaml")
    proc = gmt_launch(launch_env, "sim2sim.launch.py", f"policy:={tmp_path / 'contract.yaml'}",
                      f"dds_domain:={DDS_DOMAIN}", timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-4000:]
    assert "gmt_student.onnx not found" in out
    assert re.search(r"required node gmt_policy \(gmt-ros-policy-\d+\) exited with code 1", out), out[-4000:]
    assert "Traceback" not in out


def test_g1_real_with_a_missing_interface_fails_naming_the_bridge(launch_env):
    proc = gmt_launch(launch_env, "g1_real.launch.py", "interface:=enp99s9", f"dds_domain:={DDS_DOMAIN}", timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-4000:]
    assert "network interface 'enp99s9' does not exist" in out
    assert re.search(r"required node gmt_bridge \(gmt-ros-bridge-\d+\) exited with code 1", out), out[-4000:]


def test_g1_real_without_a_robot_waits_in_dry_run_and_says_why(launch_env):
    """No robot on the interface: the graph stays up in dry run, the bridge says what it waited for;
    Ctrl-C (SIGINT to the launch's process group, as a terminal sends it) then ends the launch with
    0 and no traceback."""
    cmd = [str(GMT_ROS), "launch", "g1_real.launch.py", "interface:=lo", f"dds_domain:={DDS_DOMAIN}", "dry_run:=1"]
    proc = popen_in_own_session(cmd, env=launch_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.monotonic() + 90
    try:
        for line in proc.stdout:
            lines.append(line)
            if "no rt/lowstate within" in line or time.monotonic() > deadline:
                break
        os.killpg(proc.pid, signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    out = "".join(lines) + rest
    assert re.search(rf"no rt/lowstate within \d+\.\d s on interface 'lo' domain {DDS_DOMAIN}: check that the robot", out), out[-4000:]
    assert "DRY RUN: rt/lowcmd is never written" in out
    assert proc.returncode == 0, out[-3000:]
    for name in ("gmt-ros-bridge", "gmt-ros-policy", "gmt-ros-player"):
        assert re.search(rf"\[{name}-\d+\]: process has finished cleanly", out), (name, out[-3000:])
    assert "Traceback" not in out


def test_sim2sim_launch_with_the_planner_source_follows_cmd_vel(launch_env):
    """source:=planner under the real LaunchService: gmt_planner runs in the player's place, the
    operator engages and releases the gantry, a geometry_msgs/Twist on /cmd_vel (from this process,
    as teleop_twist_keyboard would send it) is followed, and Ctrl-C ends every node cleanly."""
    import threading

    import rclpy
    from geometry_msgs.msg import Twist
    from rclpy.executors import SingleThreadedExecutor
    from std_msgs.msg import String
    from waiting import wait_until

    cmd = [str(GMT_ROS), "launch", "sim2sim.launch.py", "source:=planner", f"dds_domain:={DDS_DOMAIN}"]
    proc = popen_in_own_session(cmd, GRAPH_NICE, env=launch_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("launch_test_cmd_vel", context=context)
    statuses: list[dict] = []
    node.create_subscription(String, "/gmt/planner/status", lambda m: statuses.append(json.loads(m.data)), 10)
    pub = node.create_publisher(Twist, "/cmd_vel", 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        def seen(text):
            return any(text in line for line in list(lines))

        wait_until(lambda: seen("gantry released") or proc.poll() is not None, 180, "the operator releasing the gantry")
        assert proc.poll() is None, "".join(lines)[-6000:]
        wait_until(lambda: statuses, 30, "a /gmt/planner/status")
        assert statuses[-1]["source"] == "none" and statuses[-1]["standing"], statuses[-1]
        twist = Twist()
        twist.linear.x = 0.3

        def following():
            pub.publish(twist)
            return statuses and statuses[-1]["source"] == "cmd_vel" and not statuses[-1]["standing"]

        wait_until(following, 60, "the planner walking on /cmd_vel", poll_s=0.05)
        assert seen("following /cmd_vel: [0.3, 0.0, 0.0]"), "".join(lines)[-4000:]
        before_stop = "".join(lines)
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        rclpy.try_shutdown(context=context)
        reader.join(timeout=10)
    out = "".join(lines)
    assert proc.returncode == 0, out[-4000:]
    assert "supervisor in policy" in before_stop and "FAULT" not in before_stop, before_stop[-6000:]
    for name in ("sim", "gmt-ros-bridge", "gmt-ros-policy", "gmt-ros-planner"):
        assert re.search(rf"\[{name}-\d+\]: process has finished cleanly", out), (name, out[-3000:])
    assert not re.search(r"\[gmt-ros-player-\d+\]", out), "the player runs beside the planner"
    assert "Traceback" not in out, out[out.index("Traceback") - 2000:][:6000]
