"""Interpreter settings for the nodes' periodic loops (500 Hz writer, 50 Hz policy, 1 kHz sim).

Two CPython defaults cost these loops whole periods:

- the GIL switch interval (5 ms): a thread that wakes for its deadline waits up to that long for
  another thread (an SDK listener decoding a message, an rclpy helper) to give the GIL up;
- the cyclic garbage collector: a full collection walks every object the process ever made
  (a node with MuJoCo, rclpy and the SDK loaded holds ~70 000; ≈ 20 ms here, with the GIL held,
  every few seconds under 500 Hz message traffic). Objects made while starting up live as long
  as the process; ``gc.freeze`` moves them out of the collector's sight, so later collections
  walk only what the loops allocate.
"""
from __future__ import annotations

import gc
import signal
import sys

SWITCH_INTERVAL_S = 0.0005


def short_switch_interval() -> None:
    """Call first thing in a node's main()."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def freeze_startup_objects() -> None:
    """Call once the node is built, before its loops start."""
    gc.collect()
    gc.freeze()


def ignore_signals_for_exit() -> None:
    """Call once a process has stopped and cleaned up, just before it returns from main.

    A terminal's Ctrl-C reaches every process of the foreground group and ``ros2 launch`` forwards
    one more SIGINT to each node, so a node often gets a second signal while it is exiting. CPython
    puts the default handlers back while it finalises, and a signal arriving then ends the process
    with -2 instead of 0 (launch: "process has died"). Handlers set to ignore are left as they are."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
