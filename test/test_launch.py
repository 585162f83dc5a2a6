"""Launch files: they parse, name executables that exist and config files that exist.

`launch`/`launch_ros` are not installable here, so the launch description is built against a
recording stand-in of those two modules (the one seam that cannot run on this machine); on a
ROS 2 host, where they import, the real description is built too.
"""
import ast
import importlib.util
import re
import sys
import types
from pathlib import Path

import pytest
import yaml

from gmt_ros import graph

REPO = Path(__file__).resolve().parents[1]
LAUNCH_FILES = {"sim2sim": REPO / "launch" / "sim2sim.launch.py", "real": REPO / "launch" / "g1_real.launch.py"}


def console_scripts():
    text = (REPO / "setup.py").read_text()
    return dict(re.findall(r'"([\w-]+) = ([\w.]+):main"', text))


def load_launch_module(path):
    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def test_unknown_launch_argument_is_refused():
    with pytest.raises(ValueError, match=r"unknown launch argument.*speed"):
        graph.settings_for(graph.BRIDGE, {"speed": "1"})


class _Recorder:
    """Stands in for a launch/launch_ros action class: keeps its constructor arguments."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


@pytest.fixture
def recording_launch(monkeypatch):
    mods = {}
    for name, attrs in {
        "launch": ["LaunchDescription"],
        "launch.actions": ["DeclareLaunchArgument", "ExecuteProcess"],
        "launch.substitutions": ["LaunchConfiguration"],
        "launch_ros": [],
        "launch_ros.actions": ["Node"],
        "launch_ros.substitutions": ["ExecutableInPackage"],
    }.items():
        mod = types.ModuleType(name)
        for attr in attrs:
            setattr(mod, attr, type(attr, (_Recorder,), {}))
        mods[name] = mod
        monkeypatch.setitem(sys.modules, name, mod)
    return mods


@pytest.mark.parametrize("kind", sorted(LAUNCH_FILES))
def test_launch_description_wires_every_node_with_its_yaml_and_arguments(kind, recording_launch):
    description = load_launch_module(LAUNCH_FILES[kind]).generate_launch_description()
    actions = description.args[0]
    declared = {a.args[0]: a.kwargs["default_value"] for a in actions if type(a).__name__ == "DeclareLaunchArgument"}
    assert declared == graph.ARGUMENT_DEFAULTS[kind]
    nodes = [a for a in actions if type(a).__name__ == "Node"]
    procs = [a for a in actions if type(a).__name__ == "ExecuteProcess"]
    expected = graph.GRAPHS[kind]
    assert sorted(n.kwargs["executable"] for n in nodes) == sorted(s.executable for s in expected if s.ros)
    assert len(procs) == (1 if kind == "sim2sim" else 0)
    scripts = console_scripts()
    for node in nodes:
        assert node.kwargs["executable"] in scripts and node.kwargs["package"] == "gmt_ros"
        cfg, overrides = node.kwargs["parameters"]
        assert Path(cfg).is_file()
        for _name, value in overrides.items():
            assert type(value).__name__ == "LaunchConfiguration"
        if node.kwargs["executable"] == "gmt-ros-bridge":
            assert set(overrides) == {"network_interface", "dds_domain", "contract", "dry_run"}
            assert overrides["dry_run"].args == ("dry_run",)
    for proc in procs:
        cmd = proc.kwargs["cmd"]
        assert cmd[0].args == ("gmt-ros-sim", "gmt_ros") and Path(cmd[2]).is_file()
        assert "--interface" in cmd and "--domain" in cmd


@pytest.mark.skipif(importlib.util.find_spec("launch_ros") is None, reason="launch_ros exists only on a ROS 2 host")
@pytest.mark.parametrize("kind", sorted(LAUNCH_FILES))
def test_real_launch_description_on_a_ros_host(kind):
    description = load_launch_module(LAUNCH_FILES[kind]).generate_launch_description()
    assert len(description.entities) == len(graph.ARGUMENT_DEFAULTS[kind]) + len(graph.GRAPHS[kind])
