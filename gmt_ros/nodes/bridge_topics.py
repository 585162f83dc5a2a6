"""What the bridge republishes on ROS: the robot's state (/joint_states, /imu), its remote
(/wireless_remote, /wireless_remote/joy) and, in dry run, the lowcmd it would send
(/gmt/lowcmd_preview, /gmt/lowcmd_preview_gains). Called from the SDK listener and writer threads."""
from __future__ import annotations

import rclpy
from rclpy.node import Node
from sensor_msgs.msg import Imu, JointState, Joy
from std_msgs.msg import Float64MultiArray, MultiArrayDimension, UInt8MultiArray

from gmt_ros.core import g1
from gmt_ros.core.command import JointCommand
from gmt_ros.core.remote import BUTTON_NAMES
from gmt_ros.nodes.qos import STREAM_QOS

PREVIEW_TOPIC = "/gmt/lowcmd_preview"
PREVIEW_GAINS_TOPIC = "/gmt/lowcmd_preview_gains"
REMOTE_HEARTBEAT_STATES = 50  # /wireless_remote at least every 50 states (10 Hz) when unchanged
_JOINT_NAMES = list(g1.JOINT_NAMES)


def publish_from_any_thread(node: Node, publisher, msg) -> None:
    """Publish from any thread; once the rclpy context is gone there is no one to tell."""
    try:
        publisher.publish(msg)
    except Exception as exc:
        if rclpy.ok(context=node.context):
            node.get_logger().error(f"publish on {publisher.topic_name} failed: {exc!r}", throttle_duration_sec=1.0)


class RobotStateTopics:
    """/joint_states and /imu from a RobotState; the remote on change, plus a heartbeat."""

    def __init__(self, node: Node):
        self._node = node
        self._joint_states = node.create_publisher(JointState, "/joint_states", STREAM_QOS)
        self._imu = node.create_publisher(Imu, "/imu", STREAM_QOS)
        self._remote = node.create_publisher(UInt8MultiArray, "/wireless_remote", STREAM_QOS)
        self._joy = node.create_publisher(Joy, "/wireless_remote/joy", STREAM_QOS)
        self._last_remote: bytes | None = None

    def publish_state(self, state) -> None:
        stamp = self._node.get_clock().now().to_msg()
        js = JointState()
        js.header.stamp = stamp
        js.name = _JOINT_NAMES
        js.position = state.joint_pos.tolist()
        js.velocity = state.joint_vel.tolist()
        js.effort = state.joint_tau.tolist()
        self._joint_states.publish(js)

        imu = Imu()
        imu.header.stamp = stamp
        imu.header.frame_id = "pelvis"
        w, x, y, z = state.imu_quat.tolist()  # core order w,x,y,z → ROS x,y,z,w
        imu.orientation.x, imu.orientation.y, imu.orientation.z, imu.orientation.w = x, y, z, w
        imu.angular_velocity.x, imu.angular_velocity.y, imu.angular_velocity.z = state.imu_gyro.tolist()
        imu.linear_acceleration.x, imu.linear_acceleration.y, imu.linear_acceleration.z = state.imu_acc.tolist()
        self._imu.publish(imu)

    def publish_remote(self, raw: bytes, remote, n_state: int) -> None:
        """The remote changes a few times a second at most: published on change, plus a heartbeat
        every REMOTE_HEARTBEAT_STATES states, rather than two more messages per state."""
        if raw == self._last_remote and n_state % REMOTE_HEARTBEAT_STATES != 0:
            return
        self._last_remote = raw
        self._remote.publish(UInt8MultiArray(data=raw))
        joy = Joy()
        joy.header.stamp = self._node.get_clock().now().to_msg()
        joy.axes = [remote.lx, remote.ly, remote.rx, remote.ry, remote.l2_analog]
        joy.buttons = [int(n in remote.buttons) for n in BUTTON_NAMES]
        self._joy.publish(joy)


class LowcmdPreview:
    """Dry run: the command the bridge would write, as a JointState (q, dq, tau by name, the
    mode_machine in header.frame_id) and its gains (kp then kd)."""

    def __init__(self, node: Node):
        self._node = node
        self._pub = node.create_publisher(JointState, PREVIEW_TOPIC, STREAM_QOS)
        self._pub_gains = node.create_publisher(Float64MultiArray, PREVIEW_GAINS_TOPIC, STREAM_QOS)

    def publish(self, cmd: JointCommand, mode_machine: int) -> None:
        js = JointState()
        js.header.stamp = self._node.get_clock().now().to_msg()
        js.header.frame_id = f"mode_machine={mode_machine}"
        js.name = list(g1.JOINT_NAMES)
        js.position, js.velocity, js.effort = cmd.q.tolist(), cmd.dq.tolist(), cmd.tau.tolist()
        publish_from_any_thread(self._node, self._pub, js)
        gains = Float64MultiArray()
        gains.layout.dim = [
            MultiArrayDimension(label="kp,kd", size=2, stride=2 * g1.NUM_BODY_JOINTS),
            MultiArrayDimension(label="joint", size=g1.NUM_BODY_JOINTS, stride=g1.NUM_BODY_JOINTS),
        ]
        gains.data = cmd.kp.tolist() + cmd.kd.tolist()
        publish_from_any_thread(self._node, self._pub_gains, gains)
