"""The ``main`` every ROS node of gmt_ros shares: ``run_node``, and ``run_node_with_shutdown`` for a
node that must act the moment a signal arrives (the bridge: damping) and whose process must end
without deleting the Unitree SDK's DDS entities (``end_process``).

``--help`` is answered before rclpy starts (``node_cli.exit_if_help``); SIGINT/SIGTERM end the
spin through ``node_cli.stop_on_signals`` instead of rclpy's handlers, which shut the context
down under a running callback ("RCLError: ... context is invalid" tracebacks).
"""
from __future__ import annotations

import faulthandler
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn, Protocol

import rclpy
from rclpy._rclpy_pybind11 import RCLError
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from gmt_ros.adapters import fastdds_profile
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
    faulthandler.enable()  # a crash in native code (rclpy, DDS, onnxruntime) prints every thread's Python stack
    stop = stop_on_signals()
    if short_switch_interval:
        process_tuning.short_switch_interval()
    middleware = fastdds_profile.apply()
    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    rclpy.logging.get_logger(name).info(middleware)
    node = None
    code = 0
    try:
        node = make_node()
        process_tuning.freeze_startup_objects()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        while not stop.is_set():  # spin_once with a timeout: the signal handler runs between waits
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
        process_tuning.ignore_signals_for_exit()
    return code


class ShutdownNode(Protocol):
    """A node whose shutdown takes time: ``begin_shutdown`` starts it (from any thread, any
    number of times), ``shutdown`` waits for it to end."""

    def begin_shutdown(self) -> None: ...
    def shutdown(self) -> None: ...
    def destroy_node(self) -> None: ...


def run_node_with_shutdown(make_node: Callable[[], ShutdownNode], name: str, argv=None,
                           help: NodeHelp | None = None) -> NoReturn:
    """As ``run_node``, for a ``ShutdownNode`` (the bridge), with two differences. SIGINT/SIGTERM
    call ``begin_shutdown`` at once from a thread woken by Python's signal wakeup fd (written by the
    C-level handler in whichever thread the kernel picked), instead of waiting for the main thread
    to leave the executor; rclpy's own handlers are not installed. And the process ends through
    ``end_process``. A configuration, contract or network error while building the node (ValueError,
    RuntimeError, FileNotFoundError) is one fatal log line and exit code 1."""
    if help is not None:
        exit_if_help(argv, help.script, name, help.doc, help.parameters, help.config)
    # A thread waiting for the GIL otherwise waits up to 5 ms: jitter for a 2 ms writer period.
    process_tuning.short_switch_interval()
    middleware = fastdds_profile.apply()
    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    rclpy.logging.get_logger(name).info(middleware)
    faulthandler.enable()
    stop = threading.Event()
    holder: dict = {}
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)  # the wakeup fd does the work

    def wait_for_signals() -> None:
        while True:
            for number in os.read(wake_read, 16):
                node = holder.get("node")
                if node is not None:
                    node.begin_shutdown()
                word = "already stopping" if stop.is_set() else "stopping"
                rclpy.logging.get_logger(name).info(f"{signal.Signals(number).name}: {word}")
                stop.set()

    threading.Thread(target=wait_for_signals, name="signals", daemon=True).start()
    try:
        node = make_node()
    except (ValueError, RuntimeError, FileNotFoundError) as exc:  # configuration, contract, network
        rclpy.logging.get_logger(name).fatal(f"cannot start: {exc}")
        rclpy.try_shutdown()
        end_process(1)
    holder["node"] = node
    process_tuning.freeze_startup_objects()
    if stop.is_set():  # a signal arrived while starting
        node.begin_shutdown()
    try:
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.05)
    finally:
        node.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    end_process(0)


def end_process(code: int) -> NoReturn:
    """Exit handlers, then exit without deleting the SDK's DDS entities. The rt/lowstate reader
    calls into Python from CycloneDDS's receive thread; deleting it (explicitly or in interpreter
    finalisation) while a delivery waits for the GIL can deadlock: seen as a bridge that damped
    on SIGTERM but never exited. The robot sees the bridge leave when its lease ends."""
    import atexit

    atexit._run_exitfuncs()  # e.g. the benchmark's recorder
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
