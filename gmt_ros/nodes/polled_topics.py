"""Polled subscriptions: the newest sample of a topic, taken when its reader wants it.

A node that only ever uses the latest sample of a fast topic (the policy reading /joint_states
and /imu at its 50 Hz tick, the player needing the robot's joints when a command arrives, the
bridge's 500 Hz writer using the newest PD target) pays rclpy's executor for every sample
delivered: about 0.8 ms of CPU per message on this project's 2-vCPU machines (JointState at
100 Hz: 8 % of a core in an otherwise idle subscriber; ``python -m gmt_ros.nodes.polled_topics``
measures both ways). Here the subscription belongs to a reader node that no executor spins: DDS
keeps the newest samples in the reader's queue (KEEP_LAST) and ``take_newest()`` drains it when
the owner asks, for about 0.1 ms. The sample is also as fresh as DDS has it, not queued behind
whatever the executor is busy with.

``take_newest`` returns the sample with the time DDS received it (``received_timestamp``,
system clock) converted to ``time.monotonic()``, so watchdogs age it from its arrival at this
process, not from when Python got round to it.

rclpy has no public "take" call; this uses ``Subscription.handle.take_message``, the call its own
executors and ``wait_for_message`` use.
"""
from __future__ import annotations

import time
from typing import Any

from rclpy.node import Node


def _never_called(_msg) -> None:  # the reader node is never spun
    pass


def monotonic_arrival(received_s: float, now_mono: float, now_wall: float) -> float:
    """A DDS arrival time (system clock, ``received_s``) on the ``time.monotonic()`` clock, from the
    two clocks read together now: a system clock step puts it at most 1 s back, never ahead of now."""
    return now_mono - min(max(now_wall - received_s, 0.0), 1.0)


class PolledTopics:
    """A reader node (``name``) for polled subscriptions; destroy it with its owner."""

    def __init__(self, name: str, context=None):
        self.node = Node(name, context=context, start_parameter_services=False, enable_rosout=False)

    def subscribe(self, msg_type, topic: str, qos) -> PolledSubscription:
        return PolledSubscription(self.node.create_subscription(msg_type, topic, _never_called, qos))

    def destroy(self) -> None:
        self.node.destroy_node()


class PolledSubscription:
    def __init__(self, subscription):
        self._sub = subscription
        self.taken = 0  # samples taken (the newest of each drain counts once)

    def take_newest(self) -> tuple[Any, float] | None:
        """The newest sample that arrived since the last call and when it arrived
        (``time.monotonic()`` clock), or None if none did."""
        newest = None
        while True:
            got = self._sub.handle.take_message(self._sub.msg_type, self._sub.raw)
            if got is None:
                break
            newest = got
        if newest is None:
            return None
        self.taken += 1
        msg, info = newest if isinstance(newest, tuple) else (newest, {})
        received_ns = (info or {}).get("received_timestamp") or 0
        mono = time.monotonic()
        if received_ns > 0:
            mono = monotonic_arrival(received_ns * 1e-9, mono, time.time())
        return msg, mono

    def take_all(self) -> list[tuple[Any, float]]:
        """Every sample that arrived since the last call (up to the reader's queue depth), oldest
        first, each with the system time (``time.time()`` clock) DDS received it."""
        out = []
        while True:
            got = self._sub.handle.take_message(self._sub.msg_type, self._sub.raw)
            if got is None:
                return out
            self.taken += 1
            msg, info = got if isinstance(got, tuple) else (got, {})
            received_ns = (info or {}).get("received_timestamp") or 0
            out.append((msg, received_ns * 1e-9 if received_ns > 0 else time.time()))


def _measure(seconds: float = 10.0, rate_hz: float = 100.0) -> None:
    """Publish JointState at ``rate_hz`` and read it in a subprocess both ways; print the CPU."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_DOMAIN_ID=os.environ.get("ROS_DOMAIN_ID", "87"))
    for mode in ("executor", "polled"):
        pub = subprocess.Popen([sys.executable, "-c", _BENCH, "pub", str(rate_hz), str(seconds + 3)], env=env)
        try:
            out = subprocess.run([sys.executable, "-c", _BENCH, mode, str(rate_hz), str(seconds)], check=False, env=env,
                                 capture_output=True, text=True, timeout=seconds + 60)
            print(out.stdout.strip() or out.stderr.strip())
        finally:
            pub.kill()
            pub.wait()


_BENCH = r'''
import resource, sys, time
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from gmt_ros.core import g1
from gmt_ros.adapters import fastdds_profile
from gmt_ros.nodes.polled_topics import PolledTopics
mode, rate, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
fastdds_profile.apply()
rclpy.init()
node = rclpy.create_node("polled_topics_bench_" + mode)
qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
ex = SingleThreadedExecutor(); ex.add_node(node)
count = [0]
if mode == "pub":
    pub = node.create_publisher(JointState, "/polled_topics_bench", qos)
    m = JointState(name=list(g1.JOINT_NAMES), position=[0.0] * 29, velocity=[0.0] * 29, effort=[0.0] * 29)
    node.create_timer(1.0 / rate, lambda: pub.publish(m))
elif mode == "executor":
    node.create_subscription(JointState, "/polled_topics_bench", lambda m: count.__setitem__(0, count[0] + 1), qos)
else:
    readers = PolledTopics("polled_topics_bench_reader")
    sub = readers.subscribe(JointState, "/polled_topics_bench", qos)
    node.create_timer(0.02, lambda: count.__setitem__(0, count[0] + (sub.take_newest() is not None)))
start = time.monotonic(); r0 = resource.getrusage(resource.RUSAGE_SELF)
while time.monotonic() - start < seconds:
    ex.spin_once(timeout_sec=0.1)
r1 = resource.getrusage(resource.RUSAGE_SELF)
cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
if mode != "pub":
    what = "messages delivered" if mode == "executor" else "50 Hz ticks that took a sample"
    print(f"{mode:8s}: JointState at {rate:g} Hz, {count[0]} {what} in {seconds:g} s; CPU {cpu:.2f} s = "
          f"{100 * cpu / seconds:.1f} % of a core")
'''

if __name__ == "__main__":
    _measure()
