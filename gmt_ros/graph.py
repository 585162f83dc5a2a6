"""The node graph, defined once for the launch files (ROS 2 host) and `gmt-ros sim2sim` (no ROS install).

    graph          nodes                                     rates
    sim2sim        sim (unitree DDS only), bridge, policy,   sim physics 1 kHz, rt/lowstate 500 Hz,
                   motion-target source                      rt/lowcmd 500 Hz, policy 50 Hz, windows 50 Hz
    real           bridge, policy, motion-target source      (the robot publishes rt/lowstate)

The motion-target source is one of ``SOURCES``: the clip player (default) or the live stream.

Launch arguments map onto node settings in one place (``ARGUMENT_TARGETS``), so the launch files
and the process runner cannot drift apart. Parameters otherwise come from ``config/*.yaml``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gmt_ros.core.contract import DEFAULT_POLICY
from gmt_ros.core.paths import config_dir


@dataclass(frozen=True)
class NodeSpec:
    key: str            # short name used by the runner and in logs
    node_name: str      # ROS node name (matches the YAML's top-level key); "" for non-ROS
    executable: str     # console script (installed to lib/gmt_ros by colcon, bin/ by pip)
    module: str         # `python -m` equivalent
    config: str         # file under config/
    ros: bool           # True: --ros-args --params-file; False: --config (sim2sim node)


SIM = NodeSpec("sim", "", "gmt-ros-sim", "sim2sim.node", "sim2sim.yaml", ros=False)
BRIDGE = NodeSpec("bridge", "gmt_bridge", "gmt-ros-bridge", "gmt_ros.nodes.bridge_node", "bridge.yaml", ros=True)
POLICY = NodeSpec("policy", "gmt_policy", "gmt-ros-policy", "gmt_ros.nodes.policy_node", "policy.yaml", ros=True)
PLAYER = NodeSpec("player", "gmt_motion_player", "gmt-ros-player", "gmt_ros.nodes.motion_player_node",
                  "motion_player.yaml", ros=True)
STREAM = NodeSpec("stream", "gmt_stream", "gmt-ros-stream", "gmt_ros.nodes.stream_node", "stream.yaml", ros=True)

# What feeds /gmt/motion_target: one entry per source (launch argument source:=NAME). A graph runs
# exactly one, in the place of the player in GRAPHS.
SOURCES: dict[str, NodeSpec] = {
    "player": PLAYER,
    "stream": STREAM,
}
DEFAULT_SOURCE = "player"

GRAPHS: dict[str, tuple[NodeSpec, ...]] = {
    "sim2sim": (SIM, BRIDGE, POLICY, PLAYER),
    "real": (BRIDGE, POLICY, PLAYER),
}



def graph_nodes(kind: str, source: str = DEFAULT_SOURCE) -> tuple[NodeSpec, ...]:
    """The nodes of graph ``kind`` with ``source`` (a SOURCES key) feeding the motion target."""
    if kind not in GRAPHS:
        raise ValueError(f"unknown graph {kind!r}; known: {', '.join(GRAPHS)}")
    if source not in SOURCES:
        raise ValueError(f"unknown motion-target source {source!r}; known: {', '.join(SOURCES)}")
    return tuple(SOURCES[source] if spec is PLAYER else spec for spec in GRAPHS[kind])


# Launch argument -> [(node key, setting name)]. ROS nodes get `-p name:=value`, the sim `--name value`.
ARGUMENT_TARGETS: dict[str, tuple[tuple[str, str], ...]] = {
    "interface": (("bridge", "network_interface"), ("sim", "interface")),
    "dds_domain": (("bridge", "dds_domain"), ("sim", "domain")),
    "policy": (("bridge", "contract"), ("policy", "contract")),
    "dry_run": (("bridge", "dry_run"),),
}

# Per-graph launch-argument defaults: the real robot is domain 0 and a dry run until the operator
# opts in; the simulator stays on loopback in domain 1 and drives its (simulated) motors.
ARGUMENT_DEFAULTS: dict[str, dict[str, str]] = {
    "sim2sim": {"interface": "lo", "dds_domain": "1", "policy": DEFAULT_POLICY, "dry_run": "false"},
    "real": {"interface": "eth0", "dds_domain": "0", "policy": DEFAULT_POLICY, "dry_run": "true"},
}


def config_path(spec: NodeSpec, directory: Path | None = None) -> Path:
    path = (directory or config_dir()) / spec.config
    if not path.is_file():
        raise FileNotFoundError(f"config file for the {spec.key} node not found: {path}")
    return path


def node_parameters(spec: NodeSpec, directory: Path | None = None) -> dict:
    """A ROS node's parameters as its config/*.yaml sets them: code that must agree with a node
    (the offline loop with the bridge's rate, the fault suite with its timeouts) reads them here
    instead of keeping a copy."""
    import yaml

    if not spec.ros:
        raise ValueError(f"the {spec.key} node has no ROS parameters file")
    data = yaml.safe_load(config_path(spec, directory).read_text())
    return dict(data[spec.node_name]["ros__parameters"])


def settings_for(spec: NodeSpec, arguments: dict[str, str]) -> dict[str, str]:
    """The node settings a set of launch arguments implies for one node."""
    unknown = set(arguments) - set(ARGUMENT_TARGETS)
    if unknown:
        raise ValueError(f"unknown launch argument(s): {', '.join(sorted(unknown))}; known: {', '.join(ARGUMENT_TARGETS)}")
    out = {}
    for arg, value in arguments.items():
        for key, name in ARGUMENT_TARGETS[arg]:
            if key == spec.key:
                out[name] = str(value)
    return out


def command_line(spec: NodeSpec, arguments: dict[str, str], extra: dict[str, str] | None = None,
                 directory: Path | None = None) -> list[str]:
    """Arguments after the executable: the YAML file, then overrides (launch args, then extra)."""
    settings = settings_for(spec, arguments) | (extra or {})
    cfg = str(config_path(spec, directory))
    if spec.ros:
        args = ["--ros-args", "--params-file", cfg]
        for name, value in settings.items():
            args += ["-p", f"{name}:={value}"]
        return args
    args = ["--config", cfg]
    for name, value in settings.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    return args
