"""`gmt-ros stream-clip`: a live producer for gmt_stream that sends a library clip frame by frame,
as a teleoperation rig would, with the imperfections of a real link on request.

    gmt-ros stream-clip NAME [--transport zmq|ros] [--endpoint tcp://127.0.0.1:5560]
                        [--topic /gmt/stream/frame] [--rate 30] [--jitter-ms 0] [--drop 0] [--seed 0]
                        [--lead-in-s 1.5] [--joints clip|gmt23|all] [--velocities] [--log OUT.json]

The link it imitates: frame k is the clip's pose at clip time k / rate - lead_in_s (the lead-in
holds the first pose: an operator standing still before moving), stamped with its capture time
t_k = T0 + k / rate (``time.time()`` clock). It leaves at t_k + J + u_k with u_k uniform in
[-J, +J] (J = --jitter-ms: a delivery delay of J +- J; a frame cannot leave before it exists), so
frames whose delays differ by more than a period are sent out of order, and each frame is lost
with probability --drop (never sent). The log (--log) says what was sent when: the clip's start
time on the stamp clock (``clip_start_unix``), counts of frames sent, lost and sent out of order,
and how late the sends were against their plan.

Transports: ZMQ (a PUB socket connecting to gmt_stream's SUB; one JSON message per frame,
``gmt_ros.core.stream_frame``) or the ROS topic (sensor_msgs/JointState, header.stamp = t_k).
"""
from __future__ import annotations

import heapq
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from gmt_ros.core import g1

JOINT_SETS = ("clip", "gmt23", "all")
ZMQ_JOIN_S = 0.3  # a connecting PUB loses what it sends before the subscription reaches it
ROS_MATCH_TIMEOUT_S = 15.0


def plan_sends(count: int, rate: float, jitter_s: float, drop: float, seed: int) -> tuple[list[tuple[float, int]], list[int]]:
    """(sends as (offset from T0 in s, frame index) in the order they leave, lost frame indices)."""
    rng = np.random.default_rng(seed)
    lost = rng.random(count) < drop
    delays = jitter_s + rng.uniform(-jitter_s, jitter_s, count) if jitter_s > 0 else np.zeros(count)
    sends = [(k / rate + float(delays[k]), k) for k in range(count) if not lost[k]]
    heapq.heapify(sends)
    return [heapq.heappop(sends) for _ in range(len(sends))], [int(k) for k in np.flatnonzero(lost)]


class _ZmqSender:
    def __init__(self, endpoint: str):
        import zmq

        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.PUB)
        self._socket.setsockopt(zmq.LINGER, 1000)
        self._socket.setsockopt(zmq.SNDHWM, 10000)
        self._socket.connect(endpoint)
        time.sleep(ZMQ_JOIN_S)

    def send(self, stamp, names, positions, velocities, seq) -> None:
        from gmt_ros.core.stream_frame import encode_frame_json

        self._socket.send(encode_frame_json(stamp, names, positions, velocities, seq))

    def close(self) -> None:
        self._socket.close()
        self._context.term()


class _RosSender:
    def __init__(self, topic: str):
        import rclpy
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import JointState

        from gmt_ros.adapters import fastdds_profile

        self._rclpy, self._msg_type = rclpy, JointState
        fastdds_profile.apply()
        self._context = rclpy.Context()
        rclpy.init(context=self._context)
        self._node = rclpy.create_node("gmt_stream_clip_producer", context=self._context)
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self._pub = self._node.create_publisher(JointState, topic, qos)
        deadline = time.monotonic() + ROS_MATCH_TIMEOUT_S
        while self._pub.get_subscription_count() < 1:
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"nobody subscribes to {topic} after {ROS_MATCH_TIMEOUT_S:.0f} s (is gmt_stream "
                                   f"running in ROS domain {self._context.get_domain_id()}?)")
            time.sleep(0.05)

    def send(self, stamp, names, positions, velocities, seq) -> None:
        from gmt_ros.nodes.window_codec import seconds_to_time

        msg = self._msg_type(name=list(names), position=[float(x) for x in positions])
        if velocities is not None:
            msg.velocity = [float(x) for x in velocities]
        msg.header.stamp = seconds_to_time(stamp)
        self._pub.publish(msg)

    def close(self) -> None:
        self._node.destroy_node()
        self._rclpy.try_shutdown(context=self._context)


def stream_clip(name: str, transport: str = "zmq", endpoint: str = "tcp://127.0.0.1:5560",
                topic: str = "/gmt/stream/frame", rate: float = 30.0, jitter_ms: float = 0.0, drop: float = 0.0,
                seed: int = 0, lead_in_s: float = 1.5, joints: str = "clip", velocities: bool = False,
                progress=None) -> dict:
    """Send the clip; returns the log (see the module docstring). Raises ValueError for bad input."""
    from gmt_ros.core.clip_library import load_named_clip
    from gmt_ros.core.stream_frame import frame_columns

    for label, value, ok in (("--rate", rate, rate > 0), ("--jitter-ms", jitter_ms, jitter_ms >= 0),
                             ("--drop", drop, 0 <= drop < 1), ("--lead-in-s", lead_in_s, lead_in_s >= 0)):
        if not (math.isfinite(value) and ok):
            raise ValueError(f"{label} out of range: {value}")
    if transport not in ("zmq", "ros"):
        raise ValueError(f"--transport must be zmq or ros, got {transport!r}")
    if joints not in JOINT_SETS:
        raise ValueError(f"--joints must be one of {', '.join(JOINT_SETS)}, got {joints!r}")
    clip = load_named_clip(name)
    slots = {"clip": np.flatnonzero(clip.joint_mask), "gmt23": np.array(g1.GMT23_SLOTS),
             "all": np.arange(g1.NUM_BODY_JOINTS)}[joints]
    names = frame_columns([g1.JOINT_NAMES[s] for s in slots])
    count = math.floor((lead_in_s + clip.duration) * rate + 1e-9) + 1
    clip_times = np.clip(np.arange(count) / rate - lead_in_s, 0.0, clip.duration)
    f = clip.sample(clip_times)
    positions = np.concatenate([f.root_pos, f.root_quat, f.joint_pos[:, slots]], axis=1)
    vel = np.concatenate([f.root_lin_vel, np.zeros((count, 1)), f.root_ang_vel, f.joint_vel[:, slots]], axis=1)
    vel[clip_times <= 0.0] = 0.0  # the lead-in stands still
    sends, lost = plan_sends(count, rate, jitter_ms * 1e-3, drop, seed)

    sender = _ZmqSender(endpoint) if transport == "zmq" else _RosSender(topic)
    lateness, out_of_order, newest = [], 0, -1
    try:
        t0 = time.time() + 0.05
        for offset, k in sends:
            planned = t0 + offset
            wait = planned - time.time()
            if wait > 0:
                time.sleep(wait)
            sender.send(t0 + k / rate, names, positions[k], vel[k] if velocities else None, k)
            lateness.append(time.time() - planned)
            out_of_order += k < newest
            newest = max(newest, k)
            if progress is not None and k % int(rate) == 0:
                progress(k, count)
        time.sleep(0.05)  # let the last frames leave before the socket closes
    finally:
        sender.close()
    late_ms = np.array(lateness) * 1e3
    return {
        "clip": name, "transport": transport, "endpoint": endpoint if transport == "zmq" else topic,
        "rate_hz": rate, "jitter_ms": jitter_ms, "drop": drop, "seed": seed, "lead_in_s": lead_in_s,
        "joints": len(slots), "velocities": velocities, "clip_duration_s": round(clip.duration, 4),
        "t0_unix": t0, "clip_start_unix": t0 + lead_in_s, "frames": count, "sent": len(sends), "lost": len(lost),
        "sent_out_of_order": int(out_of_order), "lost_frames": lost[:200],
        "send_late_ms": {"p50": round(float(np.percentile(late_ms, 50)), 3),
                         "p99": round(float(np.percentile(late_ms, 99)), 3), "max": round(float(late_ms.max()), 3)},
    }


def cmd_stream_clip(args) -> int:
    from gmt_ros.tools import UsageError

    try:
        log = stream_clip(args.motion, args.transport, args.endpoint, args.topic, args.rate, args.jitter_ms, args.drop,
                          args.seed, args.lead_in_s, args.joints, args.velocities)
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    except RuntimeError as exc:
        print(f"gmt-ros stream-clip: error: {exc}", file=sys.stderr)
        return 1
    print(f"stream-clip {log['clip']}: {log['sent']} of {log['frames']} frames sent over {log['transport']} at "
          f"{log['rate_hz']:g} Hz ({log['lost']} lost, {log['sent_out_of_order']} out of order, jitter "
          f"±{log['jitter_ms']:g} ms); sends late p99 {log['send_late_ms']['p99']} ms", flush=True)
    if args.log:
        Path(args.log).parent.mkdir(parents=True, exist_ok=True)
        Path(args.log).write_text(json.dumps(log, indent=2) + "\n")
    return 0


def add_link_options(p, prefix: str = "") -> None:
    """The link's imperfections (shared with `gmt-ros sim2sim --source stream`)."""
    p.add_argument(f"--{prefix}rate", type=float, default=30.0, help="frames per second (default 30)")
    p.add_argument(f"--{prefix}jitter-ms", type=float, default=0.0,
                   help="delivery delay J +- J ms per frame, uniform (frames may leave out of order); default 0")
    p.add_argument(f"--{prefix}drop", type=float, default=0.0, help="probability that a frame is lost (0..1)")
    p.add_argument(f"--{prefix}seed", type=int, default=0, help="seed of the jitter and the losses")
    p.add_argument(f"--{prefix}transport", choices=("zmq", "ros"), default="zmq", help="ZMQ (default) or the ROS topic")
    p.add_argument(f"--{prefix}velocities", action="store_true",
                   help="send the clip's velocities too (default: positions only, as most rigs)")


def register(subparsers) -> None:
    p = subparsers.add_parser("stream-clip", help="stream a clip frame by frame to gmt_stream (a live producer)")
    p.add_argument("motion", help="clip library name (e.g. walk_stand) or a clip file")
    p.add_argument("--endpoint", default="tcp://127.0.0.1:5560", help="gmt_stream's ZMQ endpoint")
    p.add_argument("--topic", default="/gmt/stream/frame", help="gmt_stream's frame topic (--transport ros)")
    p.add_argument("--lead-in-s", type=float, default=1.5, help="hold the first frame this long before the clip moves")
    p.add_argument("--joints", choices=JOINT_SETS, default="clip", help="joints to send (default: those the clip has)")
    p.add_argument("--log", help="write what was sent when (JSON) here")
    add_link_options(p)
    p.set_defaults(func=cmd_stream_clip)
