"""A minimal gmt_stream producer over ZMQ: the G1 stands and waves its right arm, 30 frames a second.
Needs only pyzmq (pip install pyzmq); no ROS, no gmt_ros. docs/STREAMING.md explains every field."""
import argparse
import json
import math
import time

import zmq

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
    parser.add_argument("--endpoint", default="tcp://127.0.0.1:5560", help="where gmt_stream's SUB socket is bound")
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--seconds", type=float, default=math.inf)
    args = parser.parse_args()

    sock = zmq.Context().socket(zmq.PUB)
    sock.connect(args.endpoint)
    time.sleep(0.3)  # a PUB drops what it sends before the subscriber's subscription reaches it
    names = BASE + list(POSE)
    start, seq = time.time(), 0
    while time.time() - start < args.seconds:
        stamp = time.time()  # when this pose was captured, on a clock the robot's computer shares
        pose = dict(POSE, right_shoulder_roll_joint=-0.4 - 0.3 * (1 - math.cos(2.0 * (stamp - start))))
        positions = [0.0, 0.0, 0.78, 1.0, 0.0, 0.0, 0.0] + [pose[n] for n in POSE]  # x y z, qw qx qy qz, joints
        sock.send(json.dumps({"stamp": stamp, "seq": seq, "names": names, "positions": positions}).encode())
        seq += 1
        time.sleep(max(0.0, start + seq / args.rate - time.time()))  # a fixed schedule, not sleep-after-work


if __name__ == "__main__":
    main()
