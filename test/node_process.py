"""What the node tests share: a ROS node under test in its own process (``NodeProcess``: ``python -m
MODULE --ros-args --params-file`` (its YAML in config/) ``-p ... -r ...``, its output collected line by line for
assertions, stopped with SIGINT as ``ros2 launch`` stops it), this process's ROS side (``RosPeer``:
its own context and node, spun on a thread) and the pair of them (``node_rig``)."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import rclpy
from rclpy.executors import SingleThreadedExecutor

REPO = Path(__file__).resolve().parents[1]


class NodeProcess:
    def __init__(self, module: str, config: str, params: dict, remaps: dict | None = None):
        args = [sys.executable, "-m", module, "--ros-args", "--params-file", str(REPO / "config" / config)]
        for old, new in (remaps or {}).items():
            args += ["-r", f"{old}:={new}"]
        for k, v in params.items():
            args += ["-p", f"{k}:={v}"]
        self.lines: list[str] = []
        self.proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    def log(self) -> str:
        return "\n".join(self.lines)

    def wait_for_log(self, text, timeout=5.0, after=0):
        """Wait until a line from index ``after`` on contains ``text``."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(text in line for line in self.lines[after:]):
                return
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not logged:\n{self.log()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)
        return self.proc.returncode


class RosPeer:
    """This process's ROS side: ``node`` in a context of its own; a subclass creates its endpoints,
    then calls ``start_spinning``. ``statuses``: what ``wait_status`` searches (a subclass fills it)."""

    def __init__(self, name: str):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(f"{name}_{os.getpid()}", context=self.context)
        self.lock = threading.Lock()
        self.statuses: list[dict] = []

    def start_spinning(self) -> None:
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._spin = threading.Thread(target=self.executor.spin, daemon=True)
        self._spin.start()

    def wait_status(self, predicate, timeout=5.0) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                for s in self.statuses:
                    if predicate(s):
                        return s
            time.sleep(0.02)
        raise AssertionError(f"status never matched; last: {self.statuses[-3:]}")

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=5)
        self._spin.join(timeout=5)
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@contextlib.contextmanager
def node_rig(process: NodeProcess, make_peer, check_exit: bool = False):
    """(process, peer) once the peer sees the node up (``peer.wait_for_node()``); both closed after,
    the process's exit code asserted 0 with ``check_exit``."""
    peer = None
    try:
        peer = make_peer()
        peer.wait_for_node()
        yield process, peer
    finally:
        if peer is not None:
            peer.close()
        code = process.stop()
        if check_exit:
            assert code == 0, process.log()
