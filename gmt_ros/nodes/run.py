"""The ``main`` every ROS node of gmt_ros shares (the bridge adds its own shutdown damping).

``--help`` is answered before rclpy starts (``node_cli.exit_if_help``); SIGINT/SIGTERM end the
spin through ``node_cli.stop_on_signals`` instead of rclpy's handlers, which shut the context
down under a running callback ("RCLError: ... context is invalid" tracebacks).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import rclpy
from rclpy._rclpy_pybind11 import RCLError
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from gmt_ros.core import process_tuning
from gmt_ros.nodes.node_cli import exit_if_help, stop_on_signals


@dataclass(frozen=True)
class NodeHelp:
    """What ``SCRIPT --help`` prints: the console script, the module docstring, the PARAMETERS
    table and the shipped config file (under config/, or None)."""

    script: str
    doc: str | None
    parameters: dict
    config: str | None


def run_node(make_node: Callable[[], Node], name: str, argv=None, short_switch_interval: bool = True,
             help: NodeHelp | None = None) -> int:
    """Answer ``--help`` (exit 0), else start rclpy with ``argv``'s ROS arguments, build the node
    and spin it on one SingleThreadedExecutor until SIGINT/SIGTERM or shutdown. A configuration
    error (ValueError, FileNotFoundError while building) is one fatal log line naming it and exit
    code 1. ``short_switch_interval``: for a node with a deadline (the policy's tick), since rclpy
    and the DDS library run helper threads that take the GIL."""
    if help is not None:
        exit_if_help(argv, help.script, name, help.doc, help.parameters, help.config)
    stop_on_signals()
    if short_switch_interval:
        process_tuning.short_switch_interval()
    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    node = None
    code = 0
    try:
        node = make_node()
        process_tuning.freeze_startup_objects()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        while True:  # spin_once with a timeout: the signal handler runs between waits
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ValueError, FileNotFoundError) as exc:
        rclpy.logging.get_logger(name).fatal(f"cannot start: {exc}")
        code = 1
    except RCLError:
        if rclpy.ok():  # not the wait set of a context that SIGINT just shut down
            raise
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return code
