"""Build a launch_ros LaunchDescription from ``gmt_ros.graph`` (imported only on a ROS 2 host)."""
from __future__ import annotations

from gmt_ros import graph


def generate_graph_launch_description(kind: str):
    from launch.actions import DeclareLaunchArgument, ExecuteProcess
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node
    from launch_ros.substitutions import ExecutableInPackage

    from gmt_ros.core.paths import config_dir
    from launch import LaunchDescription

    defaults = graph.ARGUMENT_DEFAULTS[kind]
    actions = [DeclareLaunchArgument(name, default_value=value) for name, value in defaults.items()]
    args = {name: LaunchConfiguration(name) for name in defaults}
    for spec in graph.GRAPHS[kind]:
        settings = graph.settings_for(spec, {name: "" for name in defaults})
        overrides = {setting: args[arg] for arg, targets in graph.ARGUMENT_TARGETS.items()
                     for key, setting in targets if key == spec.key and arg in args}
        assert set(overrides) == set(settings)
        cfg = str(graph.config_path(spec, config_dir()))
        if spec.ros:
            actions.append(Node(package="gmt_ros", executable=spec.executable, name=spec.node_name,
                                parameters=[cfg, overrides], output="screen", emulate_tty=True))
        else:
            cmd = [ExecutableInPackage(spec.executable, "gmt_ros"), "--config", cfg]
            for name, value in overrides.items():
                cmd += [f"--{name.replace('_', '-')}", value]
            actions.append(ExecuteProcess(cmd=cmd, name=spec.key, output="screen"))
    return LaunchDescription(actions)
