"""gmt_stream: reference frames from a live producer in, 2-second motion windows out.

==========================================  ===================================  ==================
work                                        topic / transport                    rate
==========================================  ===================================  ==================
frames (floating base + joints by name,     frame_topic /gmt/stream/frame        the producer's
timestamped) from a ROS producer            (sensor_msgs/JointState, polled
                                            with their DDS arrival times)
frames from a non-ROS producer              ZMQ SUB on zmq_endpoint (JSON,       the producer's
                                            docs/STREAMING.md); a receiver
                                            thread stamps each arrival
buffer, retime, window (StreamSource)       /gmt/motion_target (out)             rate_hz (50)
→ JointTrajectory
arrival times of the frames each window     /gmt/stream/timing (out,             with the window
first carries                               Float64MultiArray)
state + producer latency/jitter/counts      /gmt/stream/status (JSON), and       status_rate_hz
                                            /diagnostics                         and on change
==========================================  ===================================  ==================

The work is ``gmt_ros.core.stream_source`` (the delay / prediction trade-off, crossfades, gap,
hold and dead-producer handling); this node wires it to topics, the ZMQ socket, parameters and a
timer. Why ZMQ as the non-ROS transport: it is what teleoperation rigs already speak (SONIC streams
its teleop and planner commands over ZMQ), has no broker to run (unlike Redis), frames messages
(unlike raw UDP), queues instead of overwriting (every frame reaches the buffer, unlike a Redis
key), has bindings for every language a mocap or VR rig is written in, and the pinned pyzmq wheel
bundles libzmq. The node binds a SUB socket (default ``tcp://127.0.0.1:5560``; a port ``*``
picks a free one, reported in the status); producers connect a PUB socket.

Frames arrive on a receiver thread (ZMQ) or in DDS's queue (ROS topic) and are taken at each
tick, in arrival order, so the core runs on one thread. Every refusal, drop, reordering, gap and
a dead producer is logged by the core's event code, at most once per log_throttle_s per code
(with the count of lines held back).
"""
from __future__ import annotations

import json
import math
import sys
import threading
import time
from collections import deque

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, String
from trajectory_msgs.msg import JointTrajectory

from gmt_ros.core import g1
from gmt_ros.core.playback import STANDING_HEIGHT
from gmt_ros.core.stream_config import StreamConfig
from gmt_ros.core.stream_frame import StreamFrameError, decode_frame_json, frame_from_named
from gmt_ros.core.stream_source import StreamSource
from gmt_ros.nodes.gmt_node import GmtNode
from gmt_ros.nodes.parameters import require_positive
from gmt_ros.nodes.qos import STREAM_QOS, stream_qos
from gmt_ros.nodes.run import NodeHelp, run_node
from gmt_ros.nodes.window_codec import encode_window, time_to_seconds

NODE_NAME = "gmt_stream"
REQUIRED_JOINTS = {"gmt23": g1.GMT23_NAMES, "all": g1.JOINT_NAMES, "none": ()}
_DEFAULTS = StreamConfig()

# name: (default, type, description)
PARAMETERS = {
    "rate_hz": (50.0, float, "motion target publish rate"),
    "window_s": (2.4, float, "seconds of motion in each window (GMT reads 1.9 s ahead, + window_max_age_s)"),
    "dt": (0.02, float, "frame step of the windows (the policies' control step)"),
    "history_s": (0.1, float, "each window starts this long before now: the policy derives velocities of a window "
                              "without them from its points, so 'now' is inside the window, not at its edge"),
    "delay_s": (_DEFAULTS.delay_s, float, "fixed delay buffer: the robot follows the producer's pose of now - delay_s"),
    "predict_s": (_DEFAULTS.predict_s, float, "past the newest frame, extrapolate at most this long, then hold"),
    "max_gap_s": (_DEFAULTS.max_gap_s, float, "interpolate across missing frames up to this gap; longer is a break"),
    "dead_after_s": (_DEFAULTS.dead_after_s, float, "no frame for this long: the producer is dead, ease to standing"),
    "blend_in_s": (_DEFAULTS.blend_in_s, float, "standing -> the stream when it starts"),
    "blend_out_s": (_DEFAULTS.blend_out_s, float, "the last pose -> standing when the producer is dead"),
    "catch_up_s": (_DEFAULTS.catch_up_s, float, "crossfade from a held / predicted pose to frames that arrived"),
    "max_latency_s": (_DEFAULTS.max_latency_s, float, "refuse frames older than this on arrival (clocks out of step)"),
    "max_future_s": (_DEFAULTS.max_future_s, float, "refuse frames stamped further ahead than this"),
    "clock": (_DEFAULTS.clock, str, "shared: stamps are on this host's clock (same host, NTP/PTP); estimated: map the "
                                    "producer's clock by the fastest frame"),
    "standing_height": (STANDING_HEIGHT, float, "pelvis height of the standing reference (m)"),
    "required_joints": ("gmt23", str, "joints every frame must carry: gmt23 (legs, waist, shoulders, elbows), all, none"),
    "stats_window_s": (_DEFAULTS.stats_window_s, float, "latency / jitter statistics over this many seconds"),
    "frame_topic": ("/gmt/stream/frame", str, "sensor_msgs/JointState frames from a ROS producer ('' = off)"),
    "zmq_endpoint": ("tcp://127.0.0.1:5560", str, "ZMQ SUB endpoint for JSON frames ('' = off; port * = any free)"),
    "zmq_bind": (True, bool, "bind the endpoint (producers connect); false: connect to a producer's PUB"),
    "motion_target_topic": ("/gmt/motion_target", str, "trajectory_msgs/JointTrajectory windows (out)"),
    "status_topic": ("/gmt/stream/status", str, "std_msgs/String JSON: state and producer statistics (out)"),
    "timing_topic": ("/gmt/stream/timing", str, "std_msgs/Float64MultiArray per window with new frames: window stamp, "
                                                "publish time, then the arrival times (s) of the frames it carries "
                                                "first (out)"),
    "status_rate_hz": (1.0, float, "status and diagnostics rate (the status also on every state change)"),
    "log_throttle_s": (2.0, float, "each kind of stream event is logged at most this often"),
}

FRAME_QOS = stream_qos(200)
WINDOW_QOS = STREAM_QOS  # never waits for a reader (gmt_ros.nodes.qos)


class StreamConfigError(ValueError):
    """A parameter value the stream node cannot run with."""


class ZmqFrames:
    """A SUB socket read by its own thread, which stamps each message's arrival (time.time());
    ``take()`` hands over what arrived. The socket is used only by that thread."""

    def __init__(self, endpoint: str, bind: bool):
        import zmq

        self._zmq = zmq
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.SUB)
        self._socket.setsockopt(zmq.SUBSCRIBE, b"")
        self._socket.setsockopt(zmq.RCVHWM, 10000)
        self._socket.setsockopt(zmq.LINGER, 0)
        try:
            (self._socket.bind if bind else self._socket.connect)(endpoint)
        except zmq.ZMQError as exc:
            self._socket.close()
            self._context.term()
            raise StreamConfigError(f"cannot {'bind' if bind else 'connect'} ZMQ endpoint {endpoint!r}: {exc}") from None
        self.endpoint = self._socket.getsockopt(zmq.LAST_ENDPOINT).decode() if bind else endpoint
        self._queue: deque[tuple[bytes, float]] = deque()
        self._running = True
        self._thread = threading.Thread(target=self._receive, name="gmt_stream-zmq", daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        zmq, sock = self._zmq, self._socket
        while self._running:
            if not sock.poll(100):
                continue
            while True:
                try:
                    parts = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self._queue.append((parts[-1], time.time()))  # a topic frame, if any, comes first

    def take(self) -> list[tuple[bytes, float]]:
        out = []
        while self._queue:
            out.append(self._queue.popleft())
        return out

    def close(self) -> None:
        self._running = False
        self._thread.join(timeout=1.0)
        self._socket.close()
        self._context.term()


class StreamNode(GmtNode):
    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, PARAMETERS, StreamConfigError, **kwargs)
        p = self.params
        require_positive(p, ("rate_hz", "window_s", "dt", "status_rate_hz", "log_throttle_s"), StreamConfigError)
        if p["required_joints"] not in REQUIRED_JOINTS:
            raise StreamConfigError(f"parameter required_joints must be one of {', '.join(REQUIRED_JOINTS)}, "
                                    f"got {p['required_joints']!r}")
        self.required = REQUIRED_JOINTS[p["required_joints"]]
        self.n_frames = math.floor(p["window_s"] / p["dt"] + 1e-9) + 1
        if self.n_frames < 2:
            raise StreamConfigError(f"window_s {p['window_s']} is shorter than one dt {p['dt']}")
        if not (math.isfinite(p["history_s"]) and 0 <= p["history_s"] < 0.4):
            raise StreamConfigError(f"parameter history_s must be in [0, 0.4) (a window's first frame may be at most "
                                    f"the policy's window_max_age_s old), got {p['history_s']}")
        self.history_frames = round(p["history_s"] / p["dt"])
        try:
            config = StreamConfig(**{k: p[k] for k in ("delay_s", "predict_s", "max_gap_s", "dead_after_s", "blend_in_s",
                                                       "blend_out_s", "catch_up_s", "max_latency_s", "max_future_s",
                                                       "clock", "standing_height", "stats_window_s")},
                                  required_joints=self.required)
        except ValueError as exc:
            raise StreamConfigError(str(exc)) from None
        self.source = StreamSource(config)
        self._last_log: dict[str, tuple[float, int]] = {}  # code -> (time logged, lines held back since)
        self._last_state = None
        self.zmq: ZmqFrames | None = None
        self._frames_in = None

        self._pub_window = self.create_publisher(JointTrajectory, p["motion_target_topic"], WINDOW_QOS)
        self._pub_status = self.create_publisher(String, p["status_topic"], 10)
        self._pub_timing = self.create_publisher(Float64MultiArray, p["timing_topic"], STREAM_QOS)
        self._pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        if p["frame_topic"]:
            # Polled at each tick with DDS's arrival times, not delivered through the executor.
            self._frames_in = self.polled_topics(f"{NODE_NAME}_frame_reader").subscribe(JointState, p["frame_topic"], FRAME_QOS)
        if p["zmq_endpoint"]:
            self.zmq = ZmqFrames(p["zmq_endpoint"], p["zmq_bind"])
        if self._frames_in is None and self.zmq is None:
            raise StreamConfigError("both frame_topic and zmq_endpoint are empty: no way for frames to arrive")
        self.create_timer(1.0 / p["rate_hz"], self._on_tick)
        self.create_timer(1.0 / p["status_rate_hz"], self._on_status)
        inputs = [x for x in (p["frame_topic"] and f"ROS {p['frame_topic']}",
                              self.zmq and f"ZMQ {self.zmq.endpoint}") if x]
        self.get_logger().info(
            f"frames from {' and '.join(inputs)}; windows of {self.n_frames} frames at {p['rate_hz']:g} Hz on "
            f"{p['motion_target_topic']}; delay {config.delay_s:g} s, prediction up to {config.predict_s:g} s, "
            f"dead after {config.dead_after_s:g} s, clock {config.clock}, required joints {p['required_joints']}")

    def destroy_node(self) -> None:
        if self.zmq is not None:
            self.zmq.close()
            self.zmq = None
        super().destroy_node()

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # ------------------------------------------------------------------ frames in

    def _take_frames(self) -> None:
        """Everything that arrived since the last tick, in arrival order, into the core."""
        arrived = []
        if self._frames_in is not None:
            try:
                arrived += [(arrival, "ros", msg) for msg, arrival in self._frames_in.take_all()]
            except Exception as exc:  # an undecodable sample
                self.source.refuse("malformed", f"could not take a {self.params['frame_topic']} sample: {exc!r}",
                                   time.time())
        if self.zmq is not None:
            arrived += [(arrival, "zmq", data) for data, arrival in self.zmq.take()]
        arrived.sort(key=lambda x: x[0])
        for arrival, kind, payload in arrived:
            try:
                if kind == "zmq":
                    frame = decode_frame_json(payload, self.required)
                else:
                    frame = frame_from_named(payload.name, payload.position, payload.velocity,
                                             time_to_seconds(payload.header.stamp), None, self.required)
            except StreamFrameError as exc:
                self.source.refuse(exc.reason, str(exc), arrival)
                continue
            self.source.add_frame(frame, arrival)

    # ------------------------------------------------------------------ windows out

    def _on_tick(self) -> None:
        self._take_frames()
        now = self._now()
        dt = self.params["dt"]
        window, with_velocities = self.source.window(now, self.n_frames + self.history_frames, dt,
                                                     start=now - self.history_frames * dt)
        msg = encode_window(window, with_velocities=with_velocities)
        self._pub_window.publish(msg)
        arrivals = self.source.take_arrivals()
        if arrivals:
            self._pub_timing.publish(Float64MultiArray(data=[window.start_time, now] + arrivals))
        self._log_events()
        if self.source.state != self._last_state:
            self._last_state = self.source.state
            self._publish_status(now)

    def _log_events(self) -> None:
        throttle = self.params["log_throttle_s"]
        log = self.get_logger()
        for event in self.source.take_events():
            last, held = self._last_log.get(event.code, (-math.inf, 0))
            if event.time - last < throttle and event.code not in ("started", "dead", "standing", "resumed"):
                self._last_log[event.code] = (last, held + 1)
                continue
            self._last_log[event.code] = (event.time, 0)
            text = event.text + (f" (+{held} more since the last such line)" if held else "")
            # one call site per severity: rclpy refuses a call site whose severity changes
            if event.level == "error":
                log.error(text)
            elif event.level == "warning":
                log.warning(text)
            else:
                log.info(text)

    def _status(self, now: float) -> dict:
        status = self.source.status(now)
        status["zmq_endpoint"] = self.zmq.endpoint if self.zmq else None
        status["frame_topic"] = self.params["frame_topic"] or None
        return status

    def _publish_status(self, now: float) -> dict:
        status = self._status(now)
        self._pub_status.publish(String(data=json.dumps(status)))
        return status

    def _on_status(self) -> None:
        now = self._now()
        status = self._publish_status(now)
        lat, counts = status["latency_ms"], status["counts"]
        values = {"state": status["state"], "coverage": str(status["coverage"]), "rate_hz": str(status["rate_hz"]),
                  "latency_ms_p50": str(lat.get("p50")), "latency_ms_p99": str(lat.get("p99")),
                  "jitter_ms": str(status["jitter_ms"]), "last_frame_age_s": str(status["last_frame_age_s"])}
        values.update({f"frames_{k}": str(v) for k, v in counts.items()})
        values.update({f"refused_{k}": str(v) for k, v in status["refused"].items()})
        streaming = status["state"] in ("streaming", "blending_in")
        level = DiagnosticStatus.OK if streaming or status["state"] == "idle" else DiagnosticStatus.WARN
        diag = DiagnosticArray(status=[DiagnosticStatus(
            level=level, name=f"{NODE_NAME}: stream", message=status["state"], hardware_id="gmt_ros",
            values=[KeyValue(key=k, value=v) for k, v in values.items()])])
        diag.header.stamp = self.get_clock().now().to_msg()
        self._pub_diag.publish(diag)


def main(argv=None) -> int:
    return run_node(StreamNode, NODE_NAME, argv, short_switch_interval=False,
                    help=NodeHelp("gmt-ros-stream", __doc__, PARAMETERS, "stream.yaml"))


if __name__ == "__main__":
    sys.exit(main())
