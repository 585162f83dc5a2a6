"""What every node's ``main`` does before it starts: answer ``--help``, and take over SIGINT/SIGTERM.

``--help`` / ``-h`` (before any ``--ros-args``) prints the node's purpose, its parameters with
defaults and descriptions (the node's PARAMETERS table: name -> (default, type, description)), how
to set them, and exits 0 without touching ROS or DDS.

``stop_on_signals()``: SIGINT and SIGTERM set the returned event; the spin loop checks it between
waits. Raising from the handler instead would land at any bytecode, also inside Python code that
rclpy's C++ layer is calling (a message's conversion while taking it): pybind11 then turns the
KeyboardInterrupt into "Unable to convert call argument '0' to Python object" and the node exits 1
with a traceback (seen on SIGTERM under load). rclpy's own handlers are not installed
(``SignalHandlerOptions.NO``): they shut the context down under the running executor, so a
callback in flight could fail with "RCLError: ... context is invalid".
"""
from __future__ import annotations

import signal
import sys
import textwrap
import threading


def help_requested(argv) -> bool:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--ros-args" in args:
        args = args[: args.index("--ros-args")]
    return "--help" in args or "-h" in args


def help_text(script: str, node_name: str, doc: str, parameters: dict, config: str | None) -> str:
    shipped = f"; config/{config} holds the shipped values, under the key {node_name}" if config else ""
    lines = [f"usage: {script} [--help] [--ros-args [--params-file FILE] [-p NAME:=VALUE ...]]", "",
             (doc or "").strip().split("\n\n")[0], "",
             f"ROS node {node_name!r}. Parameters (defaults{shipped}):"]
    for name, (default, kind, text) in parameters.items():
        kind_name = getattr(kind, "__name__", str(kind))
        lines.append(f"  {name} ({kind_name}, default {default!r})")
        lines += textwrap.wrap(text, width=96, initial_indent="      ", subsequent_indent="      ")
    files = f"--params-file config/{config} " if config else ""
    lines += ["", f"e.g. {script} --ros-args {files}-p {next(iter(parameters))}:=..."]
    return "\n".join(lines)


def exit_if_help(argv, script: str, node_name: str, doc: str, parameters: dict, config: str | None) -> None:
    if help_requested(argv):
        print(help_text(script, node_name, doc, parameters, config))
        sys.exit(0)


def stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(_signum, _frame):
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)
    return stop
