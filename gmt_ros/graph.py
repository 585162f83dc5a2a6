"""The node graph, defined once for the launch files (ROS 2 host) and `gmt-ros sim2sim` (no ROS install).

    graph          nodes                                     rates
    sim2sim        sim (unitree DDS only), bridge, policy,   sim physics 1 kHz, rt/lowstate 500 Hz,
                   motion-target source                      rt/lowcmd 500 Hz, policy 50 Hz, windows 50 Hz
    real           bridge, policy, motion-target source      (the robot publishes rt/lowstate)

The motion-target source is one of ``SOURCES``: the clip player (default), the live stream or the
velocity planner (/cmd_vel).

Launch arguments map onto node settings in one place (``LAUNCH_ARGUMENTS``: meaning, type, targets),
so the launch files and the process runner cannot drift apart. Parameters otherwise come from ``config/*.yaml``.
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
PLANNER = NodeSpec("planner", "gmt_planner", "gmt-ros-planner", "gmt_ros.nodes.planner_node", "planner.yaml", ros=True)

# What feeds /gmt/motion_target: one entry per source (launch argument source:=NAME). A graph runs
# exactly one, in the place of the player in GRAPHS.
SOURCES: dict[str, NodeSpec] = {
    "player": PLAYER,
    "stream": STREAM,
    "planner": PLANNER,
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

# Bridge profiles (``profile:=NAME``): a second parameter file on top of bridge.yaml for a robot
# that differs from a G1 on the wire (docs/UNITREE_MUJOCO.md).
BRIDGE_PROFILES: dict[str, str | None] = {"g1": None, "unitree_mujoco": "bridge_unitree_mujoco.yaml"}


@dataclass(frozen=True)
class LaunchArgument:
    """One launch argument: what it means (``ros2 launch ... --show-args``), its type, and the node
    settings it sets as (node key, setting name). Node key "operator" is the launch's own operator
    (``gmt-ros operate bringup``), which only the launch files start."""

    name: str
    description: str
    targets: tuple[tuple[str, str], ...] = ()
    kind: str = "str"  # "str", "bool" or "int"
    choices: tuple[str, ...] = ()


LAUNCH_ARGUMENTS: tuple[LaunchArgument, ...] = (
    LaunchArgument("interface", "network interface of the robot's DDS (robot: its wired NIC, e.g. enp2s0; "
                   "simulator: lo)", (("bridge", "network_interface"), ("sim", "interface"), ("operator", "interface"))),
    LaunchArgument("dds_domain", "DDS domain of rt/lowstate and rt/lowcmd (robot: 0; simulator: non-zero)",
                   (("bridge", "dds_domain"), ("sim", "domain"), ("operator", "dds_domain")), kind="int"),
    LaunchArgument("policy", "policy contract: a name under models/ (twist2_student, gmt_student) or a "
                   "contract.yaml path", (("bridge", "contract"), ("policy", "contract"), ("player", "contract"))),
    LaunchArgument("dry_run", "true: the bridge publishes what it would command on /gmt/lowcmd_preview and never "
                   "writes rt/lowcmd", (("bridge", "dry_run"),), kind="bool"),
    LaunchArgument("source", "what feeds /gmt/motion_target", kind="str", choices=tuple(SOURCES)),
    LaunchArgument("profile", "what the bridge talks to: g1 (the robot, or gmt-ros-sim) or unitree_mujoco (Unitree's "
                   "Python simulator: no CRC, mode_machine stated; loopback, non-zero domain; docs/UNITREE_MUJOCO.md)",
                   kind="str", choices=tuple(BRIDGE_PROFILES)),
    LaunchArgument("dr", "domain randomization of the simulated robot: a preset of config/randomization.yaml "
                   "(none, gmt, hard) or a preset file", (("sim", "dr"),)),
    LaunchArgument("seed", "seed of the randomization draw", (("sim", "seed"),), kind="int"),
    LaunchArgument("engage", "true: once the robot's state arrives, walk the supervisor to policy with its "
                   "services and then release the simulator's gantry (false: engage by hand: gmt-ros operate "
                   "engage --release-gantry, or the remote)", (("operator", "engage"),), kind="bool"),
    LaunchArgument("clip", "clip to play once engaged, e.g. gmt/walk_stand ('' = none; gmt-ros clips lists them)",
                   (("operator", "play"),)),
    LaunchArgument("exit_when_done", "true: end the launch once the clip has played (exit 0 when it played to its "
                   "end with no supervisor fault, else 1)", (("operator", "exit_when_done"),), kind="bool"),
    LaunchArgument("report", "write the operator's JSON summary here and the simulated robot's report beside it "
                   "(<name>_sim.json) ('' = none)", (("operator", "report"),)),
    LaunchArgument("strict_args", "true: refuse launch arguments this file does not declare (a typo would "
                   "otherwise be ignored); false when including this file from another launch file", kind="bool"),
)
ARGUMENTS: dict[str, LaunchArgument] = {a.name: a for a in LAUNCH_ARGUMENTS}
# Launch argument -> [(node key, setting name)]. ROS nodes get `-p name:=value`, the sim `--name value`.
ARGUMENT_TARGETS: dict[str, tuple[tuple[str, str], ...]] = {a.name: a.targets for a in LAUNCH_ARGUMENTS}

# Per-graph launch arguments and defaults: the real robot is domain 0 and a dry run until the
# operator opts in, engaged by a person (remote or gmt-ros operate); the simulator stays on
# loopback in a non-zero domain, drives its (simulated) motors and is engaged by the launch.
ARGUMENT_DEFAULTS: dict[str, dict[str, str]] = {
    "sim2sim": {"interface": "lo", "dds_domain": "1", "policy": DEFAULT_POLICY, "dry_run": "false",
                "source": DEFAULT_SOURCE, "profile": "g1", "dr": "none", "seed": "0", "engage": "true", "clip": "",
                "exit_when_done": "false", "report": "", "strict_args": "true"},
    "real": {"interface": "eth0", "dds_domain": "0", "policy": DEFAULT_POLICY, "dry_run": "true",
             "source": DEFAULT_SOURCE, "profile": "g1", "strict_args": "true"},
}

TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")


def parse_bool(value, name: str) -> bool:
    """A boolean setting from what people type (true/false, 1/0, yes/no, on/off, any case)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ValueError(f"{name} must be a boolean ({'/'.join(TRUE_WORDS)} or {'/'.join(FALSE_WORDS)}), got {value!r}")


def typed_arguments(kind: str, values: dict[str, str]) -> dict[str, object]:
    """The graph's launch arguments with their types (ValueError naming a bad or unknown one)."""
    known = ARGUMENT_DEFAULTS[kind]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"unknown launch argument(s) {', '.join(unknown)}; known: {', '.join(known)}")
    out: dict[str, object] = {}
    for name, default in known.items():
        arg, value = ARGUMENTS[name], values.get(name, default)
        if arg.kind == "bool":
            out[name] = parse_bool(value, name)
        elif arg.kind == "int":
            try:
                out[name] = int(str(value).strip())
            except ValueError:
                raise ValueError(f"{name} must be an integer, got {value!r}") from None
        else:
            out[name] = str(value)
        if arg.choices and out[name] not in arg.choices:
            raise ValueError(f"{name} must be one of {', '.join(arg.choices)}, got {value!r}")
    return out




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


def profile_files(spec: NodeSpec, profile: str, directory: Path | None = None) -> list[str]:
    """The parameter files a bridge profile adds after the node's own (none for other nodes)."""
    if profile not in BRIDGE_PROFILES:
        raise ValueError(f"unknown profile {profile!r}; known: {', '.join(BRIDGE_PROFILES)}")
    name = BRIDGE_PROFILES[profile]
    if spec.key != "bridge" or name is None:
        return []
    path = (directory or config_dir()) / name
    if not path.is_file():
        raise FileNotFoundError(f"bridge profile {profile!r}: {path} not found")
    return [str(path)]


def node_settings(spec: NodeSpec, arguments: dict) -> dict:
    """The node settings a set of launch arguments implies for one node (values as given)."""
    unknown = set(arguments) - set(ARGUMENT_TARGETS)
    if unknown:
        raise ValueError(f"unknown launch argument(s): {', '.join(sorted(unknown))}; known: {', '.join(ARGUMENT_TARGETS)}")
    out = {}
    for arg, value in arguments.items():
        for key, name in ARGUMENT_TARGETS[arg]:
            if key == spec.key:
                out[name] = value
    return out


def settings_for(spec: NodeSpec, arguments: dict[str, str]) -> dict[str, str]:
    """``node_settings`` as strings (command lines)."""
    return {name: str(value) for name, value in node_settings(spec, arguments).items()}


def command_line(spec: NodeSpec, arguments: dict[str, str], extra: dict[str, str] | None = None,
                 directory: Path | None = None) -> list[str]:
    """Arguments after the executable: the YAML file, then overrides (launch args, then extra)."""
    settings = settings_for(spec, arguments) | (extra or {})
    cfg = str(config_path(spec, directory))
    if spec.ros:
        args = ["--ros-args", "--params-file", cfg]
        for profile in profile_files(spec, arguments.get("profile", "g1"), directory):
            args += ["--params-file", profile]
        for name, value in settings.items():
            args += ["-p", f"{name}:={value}"]
        return args
    args = ["--config", cfg]
    for name, value in settings.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    return args
