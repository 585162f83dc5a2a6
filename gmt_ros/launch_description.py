"""Build a launch_ros LaunchDescription from ``gmt_ros.graph`` (imported only where `launch` is).

What the description does, beyond starting the nodes of ``graph.graph_nodes``:

- Every argument of ``graph.LAUNCH_ARGUMENTS`` is declared with its description (``--show-args``)
  and per-graph default. The nodes are built in an OpaqueFunction once the values are known, so
  they can be checked first: booleans as people type them (true/false, 1/0, yes/no, on/off),
  integers, choices, and, with ``strict_args`` (default), no argument the file does not declare
  (``dr_preset:=hard`` is refused with the list of known ones instead of being ignored).
- Every node is required: one that exits while the launch is not shutting down ends the launch
  with an error naming it and its exit code (``ros2 launch`` then exits non-zero).
- sim2sim: the simulated robot hangs on its gantry until released (``hold_until_release``); the
  operator (``gmt-ros operate bringup``) waits for the robot's state, walks the supervisor to
  ``policy``, only then releases the gantry, and plays ``clip``. Its exit ends the launch:
  0 with ``exit_when_done`` after a clip played to its end, non-zero (named) otherwise.
"""
from __future__ import annotations

from pathlib import Path

from gmt_ros import graph

OPERATOR = "operator"


class LaunchArgumentError(RuntimeError):
    """A launch argument the graph cannot run with; raised inside the launch (exit code 1)."""


class RequiredProcessExited(RuntimeError):
    """A node of the graph exited while the launch was running."""


def _choices_text(arg: graph.LaunchArgument) -> str:
    extra = f" ({'|'.join(arg.choices)})" if arg.choices else (" (true|false)" if arg.kind == "bool" else "")
    return arg.description + extra


def generate_graph_launch_description(kind: str):
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    defaults = graph.ARGUMENT_DEFAULTS[kind]
    actions = [DeclareLaunchArgument(name, default_value=value, description=_choices_text(graph.ARGUMENTS[name]))
               for name, value in defaults.items()]
    actions.append(OpaqueFunction(function=_graph_actions, args=[kind]))
    return LaunchDescription(actions)


def _graph_actions(context, kind: str):
    """The node actions for the resolved launch arguments (runs inside the launch)."""
    from launch.actions import ExecuteProcess, RegisterEventHandler
    from launch.event_handlers import OnProcessExit
    from launch_ros.actions import Node
    from launch_ros.substitutions import ExecutableInPackage

    from gmt_ros.core.paths import config_dir

    defaults = graph.ARGUMENT_DEFAULTS[kind]
    given = dict(context.launch_configurations)
    values = {name: given.get(name, default) for name, default in defaults.items()}
    try:
        args = graph.typed_arguments(kind, values)
        unknown = sorted(set(given) - set(defaults))
        if unknown and args["strict_args"]:
            raise ValueError(f"unknown launch argument(s) {', '.join(unknown)}; known: {', '.join(defaults)} "
                             f"(strict_args:=false to allow others)")
        nodes = graph.graph_nodes(kind, args["source"])
    except ValueError as exc:
        raise LaunchArgumentError(f"{Path(kind).name} launch: {exc}") from None
    node_args = {k: v for k, v in args.items() if graph.ARGUMENT_TARGETS[k]}

    out = []
    processes = []
    for spec in nodes:
        settings = graph.node_settings(spec, node_args)
        cfg = str(graph.config_path(spec, config_dir()))
        if spec.ros:
            action = Node(package="gmt_ros", executable=spec.executable, name=spec.node_name,
                          parameters=[cfg, *graph.profile_files(spec, args["profile"], config_dir()), settings],
                          output="screen", emulate_tty=True)
        else:  # the simulated robot: no ROS in it
            cmd = [ExecutableInPackage(spec.executable, "gmt_ros"), "--config", cfg]
            for name, value in settings.items():
                cmd += [f"--{name.replace('_', '-')}", str(value)]
            cmd.append("--hold-until-release")  # released by the operator, once in policy
            if args.get("report"):
                cmd += ["--report", _sim_report_path(args["report"])]
            action = ExecuteProcess(cmd=cmd, name=spec.key, output="screen", emulate_tty=True)
        processes.append((spec.node_name or spec.executable, action))
    out += [a for _, a in processes]
    for name, action in processes:
        out.append(RegisterEventHandler(OnProcessExit(target_action=action, on_exit=_required_exit(name))))
    if kind == "sim2sim":
        operator = _operator_action(args, ExecuteProcess, ExecutableInPackage)
        out.append(operator)
        out.append(RegisterEventHandler(OnProcessExit(target_action=operator, on_exit=_operator_exit)))
    return out


def _sim_report_path(report: str) -> str:
    path = Path(report)
    return str(path.with_name(path.stem + "_sim.json"))


def _operator_action(args: dict, ExecuteProcess, ExecutableInPackage):
    cmd = [ExecutableInPackage("gmt-ros", "gmt_ros"), "operate", "bringup", "--dds-domain", str(args["dds_domain"]),
           "--interface", args["interface"]]
    # The gantry is released only by an operator who saw the supervisor reach policy.
    cmd.append("--release-gantry" if args["engage"] else "--no-engage")
    if args["clip"]:
        if not args["engage"]:
            raise LaunchArgumentError(f"clip:={args['clip']} needs engage:=true (a clip plays under the policy)")
        cmd += ["--play", args["clip"]]
    if args["exit_when_done"]:
        cmd.append("--exit-when-done")
    if args["report"]:
        cmd += ["--report", args["report"]]
    return ExecuteProcess(cmd=cmd, name=OPERATOR, output="screen", emulate_tty=True)


def _required_exit(name: str):
    def on_exit(event, context):
        if context.is_shutdown:
            return None
        raise RequiredProcessExited(
            f"required node {name} ({event.action.process_details['name']}) exited with code {event.returncode} "
            f"while the graph was running; stopping the launch (its log lines above say why)")
    return on_exit


def _operator_exit(event, context):
    from launch.actions import Shutdown

    if context.is_shutdown:
        return None
    if event.returncode == 0:
        return [Shutdown(reason="the operator (gmt-ros operate bringup) is done")]
    raise RequiredProcessExited(f"the operator (gmt-ros operate bringup) exited with code {event.returncode}: "
                                f"the bring-up or the clip failed (its lines above say why)")
