"""The QoS of the graph's streams, chosen once for every node that writes or reads them.

Streams are the topics a loop sends at its rate, each sample replacing the last: /joint_states,
/imu and the remote (the bridge's SDK listener thread), /gmt/joint_targets and the policy's timing
(the 50 Hz tick), /gmt/motion_target (player, planner, stream), the dry-run preview (the 500 Hz
writer). They are written **best effort**. Fast DDS, the RMW here, makes ``publish()`` on a
reliable KEEP_LAST writer wait up to max_blocking_time (100 ms) when its history is full of a
sample that a matched reliable reader has not acknowledged, and a reader that has just appeared
acknowledges nothing until its own side of discovery is done. So every `gmt-ros operate` start (a
reliable /gmt/joint_targets reader) held the policy's tick for 100 ms, the bridge saw PD target
stamps 220 ms apart and damped a standing robot; a recorder or `ros2 topic echo` joining would do
the same to the bridge's state topics. A best-effort writer never waits, and a sample lost on the
way is replaced one period later.

Readers of streams are best effort too: a best-effort reader matches writers of either
reliability, so a producer's default (reliable) publisher is still heard. Commands, requests,
status and diagnostics stay reliable: they are published on events or at 1-10 Hz, never from a
control loop, and must arrive.
"""
from __future__ import annotations

from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy


def stream_qos(depth: int = 1) -> QoSProfile:
    """Best effort, keep last ``depth``: for writing a stream (depth 1) or reading one (the
    depth the reader needs between takes)."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.BEST_EFFORT)


STREAM_QOS = stream_qos(1)
