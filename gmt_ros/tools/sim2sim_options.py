"""What a node-graph run (``gmt_ros.tools.sim2sim_run``) is asked to do, checked before anything
starts: ``Sim2SimOptions``, ``check_options`` (UsageError naming the problem), the CPU-saving
``lighter_settings``, the ROS domain and the other graphs competing for the CPU.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from gmt_ros import graph
from gmt_ros.core.contract import DEFAULT_POLICY
from gmt_ros.tools import UsageError
from gmt_ros.tools.sim2sim_report import GRAPH
from gmt_ros.tools.stream_run import StreamLink

DEFAULT_DOMAIN = int(graph.ARGUMENT_DEFAULTS[GRAPH]["dds_domain"])
DEFAULT_INTERFACE = graph.ARGUMENT_DEFAULTS[GRAPH]["interface"]
DEFAULT_RAMP_S = 1.5  # the robot is on the gantry: no need for the real robot's 3 s
LIGHT_WINDOW_RATE_HZ = 25.0  # lighter_settings: motion windows every 40 ms


@dataclass
class Sim2SimOptions:
    motion: str | None  # the clip (sources "player" and "stream")
    policy: str = DEFAULT_POLICY
    seconds: float | None = None  # scored clip time (default: the whole clip)
    domain: int = DEFAULT_DOMAIN  # the robot's DDS domain (unitree SDK)
    interface: str = DEFAULT_INTERFACE
    ros_domain: int | None = None  # None: $ROS_DOMAIN_ID, else picked
    log_dir: Path | None = None  # None: a temporary directory, removed after a successful run
    ramp_time_s: float = DEFAULT_RAMP_S
    node_settings: dict[str, dict[str, str]] = field(default_factory=dict)  # more settings by node key
    launch_settings: bool = False  # True: exactly the launch file's settings (no lighter_settings)
    realtime: bool = False  # REALTIME scheduling (needs root or CAP_SYS_NICE; reported in "machine")
    nice: int = 0  # without realtime: the nodes' nice value (negative needs root or CAP_SYS_NICE)
    source: str = graph.DEFAULT_SOURCE  # what feeds /gmt/motion_target (graph.SOURCES)
    stream: StreamLink | None = None  # source "stream": the producer's link (gmt_ros.tools.stream_run)
    script: str | None = None  # source "planner": the /cmd_vel script (gmt_ros.core.velocity_script)


def _ros_parameters(spec: graph.NodeSpec) -> dict:
    import yaml

    return yaml.safe_load(graph.config_path(spec).read_text())[spec.node_name]["ros__parameters"]


def lighter_settings(contract, source: str = graph.DEFAULT_SOURCE) -> dict[str, dict[str, str]]:
    """Settings that cut the graph's CPU without changing what the policy uses: the motion
    windows. Measured per thread on the 2-vCPU development VM (/proc task times, graph in policy
    mode): sim ≈ 0.45 cores, bridge ≈ 0.37, policy ≈ 0.18, player ≈ 0.07 with these (the robot state
    polled, see gmt_ros.nodes.polled_topics), plus
    this runner (``gmt-ros bench --sections graph`` reports each node's share).

    - player ``window_s``: the launch file's 2.4 s serve GMT's 1.9 s look-ahead; a window only
      needs the policy's look-ahead + ``window_max_age_s`` + two window periods (TWIST2: 0.6 s).
      Never longer than the launch file's. Encoding and decoding 2.4 s windows at 50 Hz costs the
      player and the policy ~0.75 of a core together.
    - player ``rate_hz`` 25: the policy samples every window by time (frame i is at stamp + i dt),
      so which window a tick reads from does not change the reference it gets; windows every
      40 ms instead of 20 ms halve the cost of the window pipeline again.
    """
    player, policy = _ros_parameters(graph.PLAYER), _ros_parameters(graph.POLICY)
    rate = LIGHT_WINDOW_RATE_HZ
    lookahead = max(contract.future_offsets, default=0) * contract.control_dt
    needed = lookahead + float(policy["window_max_age_s"]) + 2.0 / rate
    window = min(float(player["window_s"]), math.ceil(needed * 10.0 - 1e-9) / 10.0)
    if source == "stream":  # the same window length; windows stay at 50 Hz (frame-in latency)
        return {"stream": {"window_s": f"{window:g}"}}
    # the player and the planner: both plan ahead, any window carries the same reference
    return {graph.SOURCES[source].key: {"window_s": f"{window:g}", "rate_hz": f"{rate:g}"}}


def other_node_processes(own_pids=()) -> list[str]:
    """Node processes of this package not started by us (another graph competing for the CPU)."""
    specs = set(graph.GRAPHS[GRAPH]) | set(graph.SOURCES.values())
    names = {spec.executable for spec in specs} | {spec.module for spec in specs}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in own_pids or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv[:4]]
        if any(Path(w).name in names or w in names for w in words):
            found.append(f"{entry.name}: {' '.join(words)[:80]}")
    return found


def pick_ros_domain(environ=os.environ) -> int:
    """The caller's ROS_DOMAIN_ID if set, else a non-zero one from our pid (1..100)."""
    value = environ.get("ROS_DOMAIN_ID", "")
    if value.strip():
        try:
            return int(value)
        except ValueError:
            raise UsageError(f"ROS_DOMAIN_ID must be an integer, got {value!r}") from None
    return 1 + os.getpid() % 100


def check_options(opt: Sim2SimOptions):
    """Validate the input before anything starts; returns (clip library name, clip duration,
    contract, player clip_dirs); for the planner source ("planner", the script's duration,
    contract, []). Raises UsageError naming the problem."""
    from gmt_ros.adapters import dds
    from gmt_ros.core.clip_library import list_clips, resolve_clip
    from gmt_ros.core.contract import load_contract
    from gmt_ros.core.motion import load_clip

    if opt.seconds is not None and not (math.isfinite(opt.seconds) and opt.seconds > 0):
        raise UsageError(f"--seconds must be positive, got {opt.seconds}")
    if not (math.isfinite(opt.ramp_time_s) and opt.ramp_time_s > 0):
        raise UsageError(f"--ramp-time-s must be positive, got {opt.ramp_time_s}")
    if opt.source not in graph.SOURCES:
        raise UsageError(f"--source must be one of {', '.join(graph.SOURCES)}, got {opt.source!r}")
    if opt.source == "stream":
        try:
            (opt.stream or StreamLink()).check()
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if not -20 <= opt.nice <= 19:
        raise UsageError(f"nice must be in -20..19, got {opt.nice}")
    if not 1 <= opt.domain <= dds.MAX_DOMAIN_ID:
        raise UsageError(f"--domain must be a non-zero DDS domain (1..{dds.MAX_DOMAIN_ID}); 0 is the real robot's, got {opt.domain}")
    if opt.ros_domain is not None and not 0 <= opt.ros_domain <= 232:
        raise UsageError(f"--ros-domain must be in 0..232, got {opt.ros_domain}")
    try:
        dds.check_interface(opt.interface)
    except ValueError as exc:
        raise UsageError(f"{exc} (tried for the robot's DDS, domain {opt.domain})") from None
    if opt.interface != "lo":
        raise UsageError(f"interface {opt.interface!r} is not loopback: the simulated robot and its bridge stay on 'lo' "
                         f"(a simulated robot on a real network would mix with a real robot's rt/lowstate)")
    if opt.source == "planner":
        from gmt_ros.tools.planner_run import check_planner_options

        return check_planner_options(opt)
    if opt.motion is None or opt.script is not None:
        raise UsageError(f"--source {opt.source} plays a --motion (--script is for --source planner)")
    try:
        contract = load_contract(opt.policy)
        path = resolve_clip(opt.motion)
        clip = load_clip(path)
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    library = {p.resolve(): n for n, p in list_clips().items()}
    if path.resolve() in library:
        return library[path.resolve()], clip.duration, contract, []
    # A clip file outside the library: the player gets its directory; its name there is the stem.
    extra = {p.resolve(): n for n, p in list_clips([str(path.parent)]).items()}
    name = extra[path.resolve()]
    if name in {n for n in list_clips()}:
        raise UsageError(f"clip file {path} has the same name ({name!r}) as a shipped clip; rename it")
    return name, clip.duration, contract, [str(path.parent.resolve())]
