"""`gmt-ros launch FILE [name:=value ...] [--show-args]`: a launch file under the real `launch` /
`launch_ros`, the way `ros2 launch gmt_ros FILE` runs it (ros2launch's LaunchService set-up:
an IncludeLaunchDescription of the file with the arguments), for machines without `ros2`.

FILE is a path, or a file name under share/gmt_ros/launch of the gmt_ros install found on
AMENT_PREFIX_PATH (a colcon install space: `source install/setup.bash`). The nodes are found
like `ros2 launch` finds them (lib/gmt_ros of that install), so it needs an install space, not
only the venv. `launch` and `launch_ros` have no wheel: `scripts/setup.sh` installs them from the
vendored archives when ../shared/vendor has them (scripts/install_ros_launch.sh).

Exit status: the LaunchService's (0, or 1 when the launch failed: a refused argument, a node
that died, the operator's failure), 2 for bad input here.
"""
from __future__ import annotations

from pathlib import Path

from gmt_ros.core.process_tuning import ignore_signals_for_exit


def resolve_launch_file(name: str) -> Path:
    from gmt_ros.tools import UsageError

    path = Path(name)
    if path.is_file():
        return path
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    except ImportError:
        raise UsageError(f"launch file {name!r} not found (and ament_index_python is not installed)") from None
    try:
        share = Path(get_package_share_directory("gmt_ros"))
    except PackageNotFoundError:
        raise UsageError(f"launch file {name!r} not found: no gmt_ros install space on AMENT_PREFIX_PATH (colcon build, "
                         f"then source install/setup.bash), and no such file") from None
    found = share / "launch" / name
    if not found.is_file():
        known = ", ".join(sorted(p.name for p in (share / "launch").glob("*.launch.py")))
        raise UsageError(f"no launch file {name!r} in {share / 'launch'}; there: {known}")
    return found


def parse_launch_arguments(words: list[str]) -> list[tuple[str, str]]:
    from gmt_ros.tools import UsageError

    out = []
    for word in words:
        name, sep, value = word.partition(":=")
        if not sep or not name:
            raise UsageError(f"launch arguments are NAME:=VALUE, got {word!r}")
        out.append((name, value))
    return out


def show_args(path: Path) -> str:
    from launch.launch_description_sources import AnyLaunchDescriptionSource

    description = AnyLaunchDescriptionSource(str(path)).try_get_launch_description_without_context()
    lines = ["Arguments (pass arguments as '<name>:=<value>'):", ""]
    for arg in description.get_launch_arguments():
        default = arg.default_value
        text = "".join(getattr(s, "text", str(s)) for s in default) if default is not None else None
        lines += [f"    '{arg.name}':", f"        {arg.description}",
                  "        (default: " + ("required" if text is None else repr(text)) + ")", ""]
    return "\n".join(lines)


def run_launch_file(path: Path, arguments: list[tuple[str, str]], debug: bool = False) -> int:
    from launch import LaunchDescription, LaunchService
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import AnyLaunchDescriptionSource

    service = LaunchService(argv=[f"{n}:={v}" for n, v in arguments], noninteractive=True, debug=debug)
    service.include_launch_description(LaunchDescription([
        IncludeLaunchDescription(AnyLaunchDescriptionSource(str(path)), launch_arguments=arguments)]))
    return service.run()


def cmd_launch(args) -> int:
    from gmt_ros.tools import UsageError

    try:
        import launch  # noqa: F401
        import launch_ros  # noqa: F401
    except ImportError as exc:
        raise UsageError(f"the ROS 2 launch packages are not installed ({exc}): bash scripts/install_ros_launch.sh "
                         f"(the vendored archives), or run ros2 launch on a ROS 2 host") from None
    path = resolve_launch_file(args.file)
    if args.show_args:
        print(show_args(path))
        return 0
    code = run_launch_file(path, parse_launch_arguments(args.arguments), debug=args.debug)
    # The launch service puts the default SIGINT handler back when it returns; a late Ctrl-C would
    # then raise KeyboardInterrupt while the interpreter tears down (a traceback after a clean exit).
    ignore_signals_for_exit()
    return code


def register(subparsers) -> None:
    p = subparsers.add_parser("launch", help="run a launch file under the real launch and launch_ros, as ros2 launch does",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("file", help="sim2sim.launch.py, g1_real.launch.py, or a path")
    p.add_argument("arguments", nargs="*", metavar="NAME:=VALUE", help="launch arguments")
    p.add_argument("--show-args", "-s", action="store_true", help="print the launch file's arguments and exit")
    p.add_argument("--debug", "-d", action="store_true", help="the launch service's debug output")
    p.set_defaults(func=cmd_launch)
