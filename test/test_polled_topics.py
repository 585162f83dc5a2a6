"""gmt_ros.nodes.polled_topics: the newest sample taken from a reader no executor spins.

Real rclpy nodes and DDS on loopback, in this process (a context of its own).
"""
import time

import pytest
import rclpy
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState

from gmt_ros.nodes.polled_topics import PolledTopics

QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)


@pytest.fixture
def ros():
    context = rclpy.Context()
    rclpy.init(context=context)
    pub_node = rclpy.create_node("polled_topics_test_pub", context=context)
    readers = PolledTopics("polled_topics_test_reader", context=context)
    yield context, pub_node, readers
    readers.destroy()
    pub_node.destroy_node()
    rclpy.try_shutdown(context=context)


def _wait_matched(pub, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while pub.get_subscription_count() == 0:
        assert time.monotonic() < deadline, "the polled subscription never matched the publisher"
        time.sleep(0.01)


def _take(sub, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = sub.take_newest()
        if got is not None:
            return got
        time.sleep(0.01)
    return None


def test_take_newest_returns_only_the_latest_sample_once_with_its_arrival_time(ros):
    _context, pub_node, readers = ros
    sub = readers.subscribe(JointState, "/polled_topics_test", QOS)
    pub = pub_node.create_publisher(JointState, "/polled_topics_test", QOS)
    _wait_matched(pub)
    assert sub.take_newest() is None  # nothing published yet
    start = time.monotonic()

    for i in range(3):
        pub.publish(JointState(name=["a"], position=[float(i)]))
        time.sleep(0.02)
    msg, received = _take(sub)
    assert list(msg.position) == [2.0]  # the older two were replaced (depth 1) and are never returned
    # Arrival as DDS saw it, on the monotonic clock: after the publishing began, not later than now.
    assert start < received <= time.monotonic()
    assert sub.take_newest() is None and sub.taken == 1  # taken once

    pub.publish(JointState(name=["a"], position=[7.0]))
    msg, later = _take(sub)
    assert list(msg.position) == [7.0] and later > received
