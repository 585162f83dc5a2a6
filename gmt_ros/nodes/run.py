"""The ``main`` every ROS node of gmt_ros shares (the bridge adds its own shutdown damping)."""
from __future__ import annotations

from collections.abc import Callable

import rclpy
from rclpy._rclpy_pybind11 import RCLError
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from gmt_ros.core import process_tuning


def run_node(make_node: Callable[[], Node], name: str, argv=None, short_switch_interval: bool = True) -> int:
    """Start rclpy with ``argv``'s ROS arguments, build the node and spin it on one
    SingleThreadedExecutor until SIGINT or shutdown. A configuration error (ValueError,
    FileNotFoundError while building) is one fatal log line naming it and exit code 1.
    ``short_switch_interval``: for a node with a deadline (the policy's tick), since rclpy and the
    DDS library run helper threads that take the GIL."""
    if short_switch_interval:
        process_tuning.short_switch_interval()
    rclpy.init(args=argv)
    node = None
    code = 0
    try:
        node = make_node()
        process_tuning.freeze_startup_objects()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
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
