"""A minimal gmt_stream producer over ROS 2: the G1 stands and waves its right arm, 30 frames a
second, as sensor_msgs/JointState on /gmt/stream/frame. docs/STREAMING.md explains every field."""
import argparse
import math
import time

import rclpy
from sensor_msgs.msg import JointState

BASE = ["floating_base_x", "floating_base_y", "floating_base_z",
        "floating_base_qw", "floating_base_qx", "floating_base_qy", "floating_base_qz"]
# The 23 joints the shipped policies track (wrists may be left out), at the G1's default pose.
POSE = {
    "left_hip_pitch_joint": -0.2, "left_hip_roll_joint": 0.0, "left_hip_yaw_joint": 0.0, "left_knee_joint": 0.4,
    "left_ankle_pitch_joint": -0.2, "left_ankle_roll_joint": 0.0,
    "right_hip_pitch_joint": -0.2, "right_hip_roll_joint": 0.0, "right_hip_yaw_joint": 0.0, "right_knee_joint": 0.4,
    "right_ankle_pitch_joint": -0.2, "right_ankle_roll_joint": 0.0,
    "waist_yaw_joint": 0.0, "waist_roll_joint": 0.0, "waist_pitch_joint": 0.0,
    "left_shoulder_pitch_joint": 0.0, "left_shoulder_roll_joint": 0.4, "left_shoulder_yaw_joint": 0.0,
    "left_elbow_joint": 1.2,
    "right_shoulder_pitch_joint": 0.0, "right_shoulder_roll_joint": -0.4, "right_shoulder_yaw_joint": 0.0,
    "right_elbow_joint": 1.2,
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--topic", default="/gmt/stream/frame")
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--seconds", type=float, default=math.inf)
    args = parser.parse_args()

    rclpy.init()
    node = rclpy.create_node("wave_stream_producer")
    pub = node.create_publisher(JointState, args.topic, 10)
    while rclpy.ok() and pub.get_subscription_count() == 0:  # frames sent before discovery are lost
        rclpy.spin_once(node, timeout_sec=0.1)
    start = time.time()

    def publish():
        now = node.get_clock().now()  # system time: when this pose was captured
        t = now.nanoseconds * 1e-9 - start
        pose = dict(POSE, right_shoulder_roll_joint=-0.4 - 0.3 * (1 - math.cos(2.0 * t)))
        msg = JointState(name=BASE + list(POSE))
        msg.header.stamp = now.to_msg()
        msg.position = [0.0, 0.0, 0.78, 1.0, 0.0, 0.0, 0.0] + [pose[n] for n in POSE]  # x y z, qw qx qy qz, joints
        pub.publish(msg)

    node.create_timer(1.0 / args.rate, publish)
    try:
        while rclpy.ok() and time.time() - start < args.seconds:
            rclpy.spin_once(node, timeout_sec=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
